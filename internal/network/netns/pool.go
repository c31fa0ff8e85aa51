package netns

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/log"
)

// Pool keeps up to Size namespaces made in advance. A goroutine refills it
// after each Take; Close stops the goroutine and drops the spare namespaces.
// It is safe for concurrent use. mu guards ready and closed.
type Pool struct {
	size    int
	prepare Prepare
	mu      sync.Mutex
	ready   []item
	closed  bool
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

type item struct {
	f     *os.File
	token string
}

// Prepare does the owner's own work on a pooled namespace in the
// background (the network package makes its eth0 veth there) and returns a
// token that Take hands back with the namespace.
type Prepare func(ns *os.File) (token string, err error)

// NewPool starts a pool of size namespaces, filled in the background. A
// size below one gives a pool that always makes namespaces on demand.
// prepare may be nil.
func NewPool(ctx context.Context, size int, prepare Prepare) *Pool {
	p := &Pool{size: size, prepare: prepare, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.fill(context.WithoutCancel(ctx))
	p.kick <- struct{}{}
	return p
}

func (p *Pool) fill(ctx context.Context) {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		// Let the start that just took a namespace finish its own netlink
		// work first: making a namespace takes the same kernel locks
		// (rtnl) and, on a small machine, the same CPU.
		select {
		case <-p.stop:
			return
		case <-time.After(refillDelay):
		}
		for {
			p.mu.Lock()
			need := !p.closed && len(p.ready) < p.size
			p.mu.Unlock()
			if !need {
				break
			}
			f, err := fresh()
			if err != nil {
				log.From(ctx).Warn("netns pool: make namespace", log.KeyErr, err)
				break
			}
			var token string
			if p.prepare != nil {
				if token, err = p.prepare(f); err != nil {
					// what prepare made inside goes with the namespace
					f.Close()
					log.From(ctx).Warn("netns pool: prepare namespace", log.KeyErr, err)
					break
				}
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				f.Close()
				return
			}
			p.ready = append(p.ready, item{f, token})
			p.mu.Unlock()
		}
	}
}

// Take binds a namespace on path: a pooled one when there is one (with
// its Prepare token), else a new one made now (token "").
func (p *Pool) Take(path string) (token string, err error) {
	p.mu.Lock()
	var f *os.File
	if n := len(p.ready); n > 0 && !p.closed {
		f, token = p.ready[n-1].f, p.ready[n-1].token
		p.ready = p.ready[:n-1]
	}
	p.mu.Unlock()
	defer func() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}()
	if f == nil {
		return "", Create(path)
	}
	defer f.Close()
	return token, bind(f, path)
}

// refillDelay is how long the pool waits after a Take before it makes new
// namespaces.
const refillDelay = 20 * time.Millisecond

// Ready is how many namespaces wait in the pool.
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// Close stops refilling and releases the spare namespaces (the kernel
// destroys them, and what Prepare made in them, in the background). It
// returns the tokens of the namespaces it released.
func (p *Pool) Close() []string {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	var tokens []string
	for _, it := range ready {
		it.f.Close()
		if it.token != "" {
			tokens = append(tokens, it.token)
		}
	}
	return tokens
}
