package events

import (
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/errdefs"
)

func msg(typ events.Type, action events.Action, id string, attrs map[string]string, t time.Time) Message {
	return Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}, Time: t.Unix(), TimeNano: t.UnixNano()}
}

func TestFilterMatch(t *testing.T) {
	now := time.Now()
	pull := msg(events.ImageEventType, events.ActionPull, "busybox:latest", map[string]string{"name": "busybox"}, now)
	start := msg(events.ContainerEventType, events.ActionStart, "abcdef0123456789", map[string]string{"name": "web", "image": "busybox", "tier": "front"}, now)
	exec := msg(events.ContainerEventType, "exec_start: sh -c true", "abcdef0123456789", map[string]string{"name": "web"}, now)
	tests := []struct {
		name string
		f    Filter
		m    Message
		want bool
	}{
		{"empty matches all", nil, pull, true},
		{"type", Filter{"type": {"image"}}, pull, true},
		{"type other", Filter{"type": {"container"}}, pull, false},
		{"type alternatives", Filter{"type": {"container", "image"}}, pull, true},
		{"event", Filter{"event": {"pull"}}, pull, true},
		{"event exec prefix", Filter{"event": {"exec_start"}}, exec, true},
		{"image by name", Filter{"image": {"busybox:latest"}}, pull, true},
		{"image familiar", Filter{"image": {"busybox"}}, pull, true},
		{"image of container", Filter{"image": {"busybox"}}, start, true},
		{"image other", Filter{"image": {"alpine"}}, start, false},
		{"container by name", Filter{"container": {"web"}}, start, true},
		{"container by id prefix", Filter{"container": {"abcdef012345"}}, start, true},
		{"container on image event", Filter{"container": {"web"}}, pull, false},
		{"label key", Filter{"label": {"tier"}}, start, true},
		{"label value", Filter{"label": {"tier=front"}}, start, true},
		{"label wrong value", Filter{"label": {"tier=back"}}, start, false},
		{"keys are anded", Filter{"type": {"container"}, "event": {"pull"}}, start, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(tc.m); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	for _, f := range []Filter{{"bogus": {"x"}}, {"type": {"nonsense"}}} {
		if err := f.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Validate(%v) = %v, want invalid argument", f, err)
		}
	}
	if err := (Filter{"type": {"image"}, "event": {"pull"}}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestSubscribeSinceAndLive(t *testing.T) {
	b := New(3)
	base := time.Unix(1000, 0)
	for i := range 5 {
		b.Publish(msg(events.ImageEventType, events.ActionTag, "img", nil, base.Add(time.Duration(i)*time.Second)))
	}
	// The ring keeps the last three (seconds 2, 3, 4).
	past, sub := b.Subscribe(base.Add(3*time.Second), Filter{"type": {"image"}})
	defer sub.Close()
	if len(past) != 2 || past[0].Time != 1003 || past[1].Time != 1004 {
		t.Fatalf("past = %+v, want times 1003, 1004", past)
	}
	all, sub2 := b.Subscribe(time.Unix(1, 0), nil)
	sub2.Close()
	if len(all) != 3 || all[0].Time != 1002 {
		t.Fatalf("ring = %+v, want the last three oldest first", all)
	}
	b.Publish(msg(events.ContainerEventType, events.ActionStart, "c", nil, time.Time{}))
	b.Publish(msg(events.ImageEventType, events.ActionPull, "busybox", nil, time.Time{}))
	select {
	case m := <-sub.C:
		if m.Action != events.ActionPull || m.TimeNano == 0 || m.Scope != "local" {
			t.Fatalf("live = %+v, want the pull with a time and scope", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no live event")
	}
	if b.Listeners() != 1 {
		t.Errorf("Listeners = %d, want 1", b.Listeners())
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	b := New(0)
	_, sub := b.Subscribe(time.Time{}, nil)
	for range subscriberBuffer + 1 {
		b.Publish(msg(events.ImageEventType, events.ActionTag, "img", nil, time.Time{}))
	}
	n := 0
	for range sub.C {
		n++
	}
	if n != subscriberBuffer || !sub.Dropped() {
		t.Fatalf("read %d, dropped %v; want %d and dropped", n, sub.Dropped(), subscriberBuffer)
	}
	sub.Close() // a second close is harmless
	if b.Listeners() != 0 {
		t.Errorf("Listeners = %d, want 0", b.Listeners())
	}
}
