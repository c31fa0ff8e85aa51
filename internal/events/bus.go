package events

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Message is one event in docker's wire shape.
type Message = events.Message

// DefaultRingSize is how many past events a Bus keeps for --since. docker
// keeps 1024 too: enough for a burst of container starts, bounded memory.
const DefaultRingSize = 1024

// subscriberBuffer is how many events a slow subscriber may fall behind
// before it is dropped; publishing never blocks on a subscriber.
const subscriberBuffer = 256

// Bus publishes events to subscribers and remembers the last few. It is
// safe for concurrent use; mu guards every field.
type Bus struct {
	mu   sync.Mutex
	ring []Message // oldest first once full; start is the oldest
	next int       // where the next event goes when the ring is full
	size int
	subs map[*Subscription]struct{}
	now  func() time.Time
}

// New returns a bus keeping the last size events (DefaultRingSize if
// size <= 0).
func New(size int) *Bus {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &Bus{size: size, subs: map[*Subscription]struct{}{}, now: time.Now}
}

// Publish records m and sends it to every subscriber whose filter matches.
// A zero time is set to now. A subscriber whose buffer is full is dropped
// (its channel is closed, and Dropped reports it) rather than slowing the
// publisher, which may be a container's exit path.
func (b *Bus) Publish(m Message) {
	if m.TimeNano == 0 {
		t := b.now()
		m.Time, m.TimeNano = t.Unix(), t.UnixNano()
	} else if m.Time == 0 {
		m.Time = m.TimeNano / int64(time.Second)
	}
	if m.Scope == "" {
		m.Scope = "local"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < b.size {
		b.ring = append(b.ring, m)
	} else {
		b.ring[b.next] = m
		b.next = (b.next + 1) % b.size
	}
	for s := range b.subs {
		if !s.filter.Match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			s.dropped = true
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscription is a live feed of events. Read C until it is closed (by
// Close, or by the bus when the subscriber fell too far behind).
type Subscription struct {
	C       <-chan Message
	ch      chan Message
	filter  Filter
	bus     *Bus
	dropped bool // guarded by bus.mu
}

// Close stops the feed and closes C. It is safe to call more than once.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.ch)
	}
}

// Dropped reports whether the bus closed the feed because the reader was
// too slow.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Subscribe returns the remembered events at or after since (none when
// since is zero) that match f, oldest first, and a live feed of the ones
// published afterwards. Taking both under one lock means no event falls
// between the two or shows up in both. The caller must Close the feed.
func (b *Bus) Subscribe(since time.Time, f Filter) ([]Message, *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []Message
	if !since.IsZero() {
		n := since.UnixNano()
		for i := range b.ring {
			m := b.ring[(b.next+i)%len(b.ring)]
			if m.TimeNano >= n && f.Match(m) {
				past = append(past, m)
			}
		}
	}
	ch := make(chan Message, subscriberBuffer)
	s := &Subscription{C: ch, ch: ch, filter: f, bus: b}
	b.subs[s] = struct{}{}
	return past, s
}

// Listeners is how many live subscriptions there are (docker info's
// NEventsListener).
func (b *Bus) Listeners() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
