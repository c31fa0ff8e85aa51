package events_test

import (
	"fmt"
	"time"

	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/events"
)

// ExampleBus shows the contract /events relies on: what was published
// before a subscription is replayed from since, what comes after arrives
// live, both through the same filter.
func ExampleBus() {
	bus := events.New(events.DefaultRingSize)
	start := time.Now().Add(-time.Second)
	bus.Publish(evtypes.Message{Type: evtypes.ImageEventType, Action: evtypes.ActionPull, Actor: evtypes.Actor{ID: "busybox:latest"}})
	bus.Publish(evtypes.Message{Type: evtypes.ContainerEventType, Action: evtypes.ActionStart, Actor: evtypes.Actor{ID: "c1"}})

	past, sub := bus.Subscribe(start, events.Filter{"type": {"image"}})
	defer sub.Close()
	for _, m := range past {
		fmt.Println("replayed:", m.Type, m.Action, m.Actor.ID)
	}
	bus.Publish(evtypes.Message{Type: evtypes.ImageEventType, Action: evtypes.ActionTag, Actor: evtypes.Actor{ID: "sha256:abc"}})
	m := <-sub.C
	fmt.Println("live:", m.Type, m.Action, m.Actor.ID)
	// Output:
	// replayed: image pull busybox:latest
	// live: image tag sha256:abc
}
