package daemon

import (
	"context"
	"maps"

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
// image ID (for pull and push, the reference), "name" is the ID again
// (load, save, import, untag, delete), the tag given (tag) or the
// repository (pull, push), and the image's labels come along while the
// image is still there to read them from.
func (e *Engine) emitImage(ctx context.Context, action evtypes.Action, id, name string) {
	attrs := map[string]string{}
	if r, err := e.images.Lookup(ctx, id); err == nil {
		if c, err := e.config(ctx, r); err == nil {
			maps.Copy(attrs, c.Config.Labels)
		}
	}
	attrs["name"] = name
	e.Emit(ctx, evtypes.ImageEventType, action, id, attrs)
}
