package portmap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// udpIdle is how long a UDP flow through a proxy lives without a reply
// (the kernel's own udp conntrack timeout for a stream is 120 s).
const udpIdle = 120 * time.Second

// Add reserves more bindings into r, all or nothing.
func (r *Reservation) Add(bs []Binding) error {
	more, err := Reserve(bs)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Bindings = append(r.Bindings, more.Bindings...)
	r.fds = append(r.fds, more.fds...)
	return nil
}

// Proxy serves the reserved socket of Bindings[i] from user space:
// each TCP connection, or each UDP client's datagrams, go on to target.
// It is for the paths the kernel's NAT cannot take, which the caller
// knows; the proxy ends with Close. SCTP is not proxied.
func (r *Reservation) Proxy(i int, target netip.AddrPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 0 || i >= len(r.fds) {
		return fmt.Errorf("proxy of binding %d: no such binding: %w", i, errdefs.ErrInvalidArgument)
	}
	b := r.Bindings[i]
	fail := func(err error) error {
		return fmt.Errorf("proxy %s to %s: %w", netip.AddrPortFrom(b.HostIP, b.HostPort), target, err)
	}
	// The proxy's own descriptor shares the reserved socket; both are
	// closed by Close, and the port is free once the last one is.
	dup, err := unix.FcntlInt(uintptr(r.fds[i]), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	f := os.NewFile(uintptr(dup), "hostport")
	defer f.Close()
	p := &proxy{target: target, conns: map[io.Closer]bool{}}
	switch b.Proto {
	case "tcp", "":
		if err := unix.Listen(r.fds[i], 128); err != nil {
			return fail(err)
		}
		l, err := net.FileListener(f)
		if err != nil {
			return fail(err)
		}
		p.sock = l
		p.wg.Add(1)
		go p.serveTCP(l)
	case "udp":
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return fail(err)
		}
		p.sock = pc
		p.wg.Add(1)
		go p.serveUDP(pc)
	default:
		return fail(fmt.Errorf("%s is not proxied: %w", b.Proto, errdefs.ErrNotImplemented))
	}
	r.proxies = append(r.proxies, p)
	return nil
}

// proxy is one served port. mu guards conns and closed; wg counts the
// serving goroutine and one per connection or flow.
type proxy struct {
	target netip.AddrPort
	sock   io.Closer

	mu     sync.Mutex
	conns  map[io.Closer]bool
	closed bool
	wg     sync.WaitGroup
}

// track registers c to be closed with the proxy; false (and c closed)
// when the proxy is closed already.
func (p *proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// close stops the proxy and waits for its goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.sock.Close()
	p.wg.Wait()
}

func (p *proxy) serveTCP(l net.Listener) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // EMFILE and the like: let it pass
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Add(1)
		go p.pipeTCP(c.(*net.TCPConn))
	}
}

// pipeTCP copies both ways, passing each side's end of stream on as a
// half close, so that request-then-EOF protocols work through it.
func (p *proxy) pipeTCP(c *net.TCPConn) {
	defer p.wg.Done()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	d := net.Dialer{Timeout: 5 * time.Second}
	uc, err := d.Dial("tcp", p.target.String())
	if err != nil {
		return
	}
	u := uc.(*net.TCPConn)
	if !p.track(u) {
		return
	}
	defer p.untrack(u)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	_ = c.CloseWrite()
	<-done
}

// serveUDP relays each client's datagrams through a socket of its own
// towards the target, and the target's replies back to that client.
func (p *proxy) serveUDP(pc net.PacketConn) {
	defer p.wg.Done()
	var mu sync.Mutex // guards flows
	flows := map[string]*net.UDPConn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		key := from.String()
		mu.Lock()
		up := flows[key]
		mu.Unlock()
		if up == nil {
			if up, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.target)); err != nil {
				continue
			}
			if !p.track(up) {
				return
			}
			mu.Lock()
			flows[key] = up
			mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
					p.untrack(up)
				}()
				reply := make([]byte, 65535)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := up.Read(reply)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(reply[:n], from); err != nil {
						return
					}
				}
			}()
		}
		_, _ = up.Write(buf[:n])
	}
}
