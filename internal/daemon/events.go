package daemon

import (
	"context"
	"sync"

	evtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
)

// buses holds each Engine's event bus. Like registries in pull.go it lives
// beside Engine rather than in it until engine.go grows the field; Engines
// are few and long-lived, so the map does not grow.
var buses sync.Map // *Engine → *events.Bus

// Events is e's event bus: the API's /events reads it, and every
// lifecycle step publishes to it (through Emit).
func (e *Engine) Events() *events.Bus {
	if b, ok := buses.Load(e); ok {
		return b.(*events.Bus)
	}
	b, _ := buses.LoadOrStore(e, events.New(events.DefaultRingSize))
	return b.(*events.Bus)
}

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

// Evented is an Engine whose image methods publish docker's image events
// (pull, push, tag, untag, delete, load, save, import, prune). The API
// serves an Evented so `docker events` sees image work.
//
// Interim: the events belong in the image methods themselves (images.go,
// load.go, pull.go, push.go); once they emit there, Evented goes and the
// API takes the *Engine directly. Only successful steps are published.
type Evented struct {
	*Engine
}

// Pull is Engine.Pull, then a "pull" event for the reference.
func (v Evented) Pull(ctx context.Context, ref string, opts PullOptions) (PullResult, error) {
	res, err := v.Engine.Pull(ctx, ref, opts)
	if err == nil {
		v.emitImage(ctx, evtypes.ActionPull, image.Familiar(res.Name), image.Familiar(res.Name))
	}
	return res, err
}

// Push is Engine.Push, then a "push" event for the reference.
func (v Evented) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	res, err := v.Engine.Push(ctx, ref, opts)
	if err == nil {
		v.emitImage(ctx, evtypes.ActionPush, image.Familiar(res.Name), image.Familiar(res.Name))
	}
	return res, err
}

// ImageTag is Engine.ImageTag, then a "tag" event.
func (v Evented) ImageTag(ctx context.Context, opts ImageTagOptions) error {
	if err := v.Engine.ImageTag(ctx, opts); err != nil {
		return err
	}
	id := opts.Source
	if r, err := v.images.Lookup(ctx, opts.Target); err == nil {
		id = r.ID.String()
	}
	name := opts.Target
	if n, err := image.ParseTag(opts.Target); err == nil {
		name = image.Familiar(n.String())
	}
	v.emitImage(ctx, evtypes.ActionTag, id, name)
	return nil
}

// ImageRemove is Engine.ImageRemove, then an "untag" event per name and
// a "delete" event if the image went. A partial result (an error after
// some names went) still reports what happened.
func (v Evented) ImageRemove(ctx context.Context, ref string, opts ImageRemoveOptions) (ImageRemoveResult, error) {
	id := ""
	if r, err := v.images.Lookup(ctx, ref); err == nil {
		id = r.ID.String()
	}
	res, err := v.Engine.ImageRemove(ctx, ref, opts)
	v.emitRemoved(ctx, id, res.Items)
	return res, err
}

func (v Evented) emitRemoved(ctx context.Context, id string, items []imagetypes.DeleteResponse) {
	for _, it := range items {
		if it.Untagged != "" {
			v.emitImage(ctx, evtypes.ActionUnTag, id, it.Untagged)
		}
		if it.Deleted != "" {
			v.emitImage(ctx, evtypes.ActionDelete, it.Deleted, it.Deleted)
		}
	}
}

// ImagePrune is Engine.ImagePrune, then untag and delete events, then a
// "prune" event with the space reclaimed.
func (v Evented) ImagePrune(ctx context.Context, opts ImagePruneOptions) (ImagePruneResult, error) {
	res, err := v.Engine.ImagePrune(ctx, opts)
	if err == nil {
		v.emitRemoved(ctx, "", res.ImagesDeleted)
		v.Emit(ctx, evtypes.ImageEventType, evtypes.ActionPrune, "", map[string]string{"reclaimed": itoa(int64(res.SpaceReclaimed))})
	}
	return res, err
}

// ImageLoad is Engine.ImageLoad, then a "load" event per image.
func (v Evented) ImageLoad(ctx context.Context, opts ImageLoadOptions) (ImageLoadResult, error) {
	res, err := v.Engine.ImageLoad(ctx, opts)
	for _, im := range res.Images {
		name := im.ID.String()
		if len(im.RepoTags) > 0 {
			name = im.RepoTags[0]
		}
		v.emitImage(ctx, evtypes.ActionLoad, im.ID.String(), name)
	}
	return res, err
}

// ImageSave is Engine.ImageSave, then a "save" event per reference.
func (v Evented) ImageSave(ctx context.Context, opts ImageSaveOptions) error {
	if err := v.Engine.ImageSave(ctx, opts); err != nil {
		return err
	}
	for _, ref := range opts.Refs {
		id := ref
		if r, err := v.images.Lookup(ctx, ref); err == nil {
			id = r.ID.String()
		}
		v.emitImage(ctx, evtypes.ActionSave, id, ref)
	}
	return nil
}

// ImageImport is Engine.ImageImport, then an "import" event.
func (v Evented) ImageImport(ctx context.Context, opts ImageImportOptions) (ImageImportResult, error) {
	res, err := v.Engine.ImageImport(ctx, opts)
	if err == nil {
		v.emitImage(ctx, evtypes.ActionImport, res.ID.String(), res.ID.String())
	}
	return res, err
}
