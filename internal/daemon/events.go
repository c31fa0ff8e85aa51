package daemon

import (
	"context"

	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/events"
)

// Events is e's event bus: the API's /events reads it, and every
// lifecycle step publishes to it (through Emit).
func (e *Engine) Events() *events.Bus { return e.bus }

// Emit publishes one event of type typ about actor id. Containers call it
// as Emit(ctx, evtypes.ContainerEventType, evtypes.ActionStart, id,
// map[string]string{"name": name, "image": image}) plus the container's
// labels, as docker does.
func (e *Engine) Emit(_ context.Context, typ evtypes.Type, action evtypes.Action, id string, attrs map[string]string) {
	e.Events().Publish(evtypes.Message{Type: typ, Action: action, Actor: evtypes.Actor{ID: id, Attributes: attrs}})
}

// emitImage publishes an image event as docker does: the actor is the
// image ID (or, for pull and push, the reference) and "name" the
// reference the user gave.
func (e *Engine) emitImage(ctx context.Context, action evtypes.Action, id, name string) {
	e.Emit(ctx, evtypes.ImageEventType, action, id, map[string]string{"name": name})
}
