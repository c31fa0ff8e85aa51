package daemon

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	evtypes "github.com/moby/moby/api/types/events"
	mounttypes "github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/volume"
)

// volumeScope is where a local volume is visible: this host.
const volumeScope = "local"

// VolumeCreate is docker volume create: a named or anonymous volume of the
// local driver, or the existing volume of that name as it is (docker's
// idempotence). Other drivers and cluster volumes are ErrNotImplemented;
// a bad name or driver option is ErrInvalidArgument.
func (e *Engine) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (volumetypes.Volume, error) {
	c, err := e.ctrs()
	if err != nil {
		return volumetypes.Volume{}, err
	}
	if req.ClusterVolumeSpec != nil {
		return volumetypes.Volume{}, fmt.Errorf("create %s: cluster volumes need swarm mode, which berth does not have: %w", req.Name, errdefs.ErrNotImplemented)
	}
	if req.Driver != "" && req.Driver != volume.Driver {
		return volumetypes.Volume{}, fmt.Errorf("create %s: volume driver %q: berth has only the %q driver: %w", req.Name, req.Driver, volume.Driver, errdefs.ErrNotImplemented)
	}
	v, created, err := c.vols.Create(ctx, volume.CreateOptions{Name: req.Name, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		return volumetypes.Volume{}, err
	}
	if created {
		e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionCreate, v.Name, map[string]string{"driver": volume.Driver})
	}
	return volumeAPI(v), nil
}

// VolumeInspect is docker volume inspect (ErrNotFound: "get x: no such
// volume").
func (e *Engine) VolumeInspect(ctx context.Context, name string) (volumetypes.Volume, error) {
	c, err := e.ctrs()
	if err != nil {
		return volumetypes.Volume{}, err
	}
	v, err := c.vols.Get(name)
	if err != nil {
		return volumetypes.Volume{}, err
	}
	return volumeAPI(v), nil
}

// VolumeList is docker volume ls, with docker's filters: name (a regular
// expression, as docker matches it), label, driver, dangling (used by no
// container).
func (e *Engine) VolumeList(ctx context.Context, f Filters) (volumetypes.ListResponse, error) {
	out := volumetypes.ListResponse{Volumes: []volumetypes.Volume{}}
	if err := f.check("name", "label", "driver", "dangling"); err != nil {
		return out, err
	}
	dangling, danglingSet, err := f.bool("dangling")
	if err != nil {
		return out, err
	}
	names := make([]*regexp.Regexp, 0, len(f["name"]))
	for _, n := range f["name"] {
		re, err := regexp.Compile(n)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(n))
		}
		names = append(names, re)
	}
	c, err := e.ctrs()
	if err != nil {
		return out, err
	}
	vols, err := c.vols.List()
	if err != nil {
		return out, err
	}
	users := e.volumeUsers(c)
	for _, v := range vols {
		if len(names) > 0 && !slices.ContainsFunc(names, func(re *regexp.Regexp) bool { return re.MatchString(v.Name) }) {
			continue
		}
		if len(f["driver"]) > 0 && !slices.Contains(f["driver"], volume.Driver) {
			continue
		}
		if !f.labels("label", v.Labels) {
			continue
		}
		if danglingSet && (len(users[v.Name]) == 0) != dangling {
			continue
		}
		out.Volumes = append(out.Volumes, volumeAPI(v))
	}
	return out, nil
}

// VolumeRemove is docker volume rm. A volume a container uses (running or
// not) is ErrConflict in docker's words, "remove x: volume is in use -
// [ids]"; force makes a missing volume no error, as docker's does.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	c, err := e.ctrs()
	if err != nil {
		return err
	}
	err = c.vols.RemoveIf(name, func(volume.Volume) error {
		if ids := e.volumeUsers(c)[name]; len(ids) > 0 {
			return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(ids, ", "), errdefs.ErrConflict)
		}
		return nil
	})
	if err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionDestroy, name, map[string]string{"driver": volume.Driver})
	return nil
}

// VolumesPrune is docker volume prune: the volumes no container uses,
// only anonymous ones unless the filter all=true says every one (docker
// 23 and later), selected by label= and label!= too. Volumes with mount
// options are left alone, as docker leaves them: removing them frees
// nothing here.
func (e *Engine) VolumesPrune(ctx context.Context, f Filters) (volumetypes.PruneReport, error) {
	rep := volumetypes.PruneReport{VolumesDeleted: []string{}}
	if err := f.check("label", "label!", "all"); err != nil {
		return rep, err
	}
	if _, running := volumePrunes.LoadOrStore(e, true); running {
		return rep, fmt.Errorf("a prune operation is already running: %w", errdefs.ErrConflict)
	}
	defer volumePrunes.Delete(e)
	all, _, err := f.bool("all")
	if err != nil {
		return rep, err
	}
	c, err := e.ctrs()
	if err != nil {
		return rep, err
	}
	vols, err := c.vols.List()
	if err != nil {
		return rep, err
	}
	for _, v := range vols {
		if len(v.Options) > 0 || (!all && !v.IsAnonymous()) {
			continue
		}
		if !f.labels("label", v.Labels) || !notLabels(f, v.Labels) {
			continue
		}
		size, _ := c.vols.Size(v.Name)
		err := c.vols.RemoveIf(v.Name, func(volume.Volume) error {
			if len(e.volumeUsers(c)[v.Name]) > 0 {
				return errdefs.ErrConflict
			}
			return nil
		})
		switch {
		case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrNotFound):
			continue // in use, or removed meanwhile
		case err != nil:
			log.From(ctx).Warn("volume prune: remove", "volume", v.Name, log.KeyErr, err)
			continue
		}
		e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionDestroy, v.Name, map[string]string{"driver": volume.Driver})
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionPrune, "", map[string]string{"reclaimed": itoa(int64(rep.SpaceReclaimed))})
	return rep, nil
}

// volumePrunes holds the engines whose volume prune runs now: one at a
// time, as docker's (a second gets its conflict). A package map, as
// engineCtrs is, for the Engine's fields are not this file's.
var volumePrunes sync.Map // *Engine → true

// volumesDiskUsage is system df's volume part: each volume without mount
// options (docker leaves those out: their space is not this host's disk)
// with its size and how many containers use it.
func (e *Engine) volumesDiskUsage(_ context.Context) (*volumetypes.DiskUsage, error) {
	du := &volumetypes.DiskUsage{Items: []volumetypes.Volume{}}
	c, err := e.ctrs()
	if err != nil {
		return du, nil // no containers side: no volumes either
	}
	vols, err := c.vols.List()
	if err != nil {
		return du, err
	}
	users := e.volumeUsers(c)
	for _, v := range vols {
		if len(v.Options) > 0 {
			continue
		}
		size, err := c.vols.Size(v.Name)
		if err != nil {
			size = -1 // docker's "unknown"
		}
		refs := int64(len(users[v.Name]))
		item := volumeAPI(v)
		item.UsageData = &volumetypes.UsageData{Size: size, RefCount: refs}
		du.Items = append(du.Items, item)
		du.TotalCount++
		if size > 0 {
			du.TotalSize += size
		}
		if refs > 0 {
			du.ActiveCount++
		} else if size > 0 {
			du.Reclaimable += size
		}
	}
	return du, nil
}

// volumeUsers maps each volume in use to the IDs of the containers that
// mount it, running or not, sorted.
func (e *Engine) volumeUsers(c *ctrs) map[string][]string {
	out := map[string][]string{}
	for _, ct := range c.store.List() {
		r := ct.Snapshot()
		for _, m := range r.Mounts {
			if m.Type == mounttypes.TypeVolume && m.Name != "" && !slices.Contains(out[m.Name], r.ID) {
				out[m.Name] = append(out[m.Name], r.ID)
			}
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// volumeAPI is v in the API's shape.
func volumeAPI(v volume.Volume) volumetypes.Volume {
	return volumetypes.Volume{
		Name:       v.Name,
		Driver:     volume.Driver,
		Mountpoint: v.Mountpoint,
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Labels:     v.Labels,
		Options:    v.Options,
		Scope:      volumeScope,
	}
}

// StartVolumeEvents publishes docker's volume "mount" event for each
// volume of a container that starts and "unmount" for each when it dies,
// until ctx ends or stop is called. cmd/berth calls it once after
// InitContainers.
//
// It follows the container events on the bus rather than the start path,
// so a volume's mount event comes just after the container's start (in
// docker, just before). The attributes are docker's.
func (e *Engine) StartVolumeEvents(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f := events.Filter{"type": {string(evtypes.ContainerEventType)}, "event": {string(evtypes.ActionStart), string(evtypes.ActionDie)}}
		for ctx.Err() == nil {
			_, sub := e.Events().Subscribe(time.Time{}, f)
			for open := true; open; {
				select {
				case <-ctx.Done():
					sub.Close()
					return
				case m, ok := <-sub.C:
					if !ok {
						open = false // we fell behind: take the feed up again
						break
					}
					e.emitVolumeMounts(ctx, m.Actor.ID, m.Action == evtypes.ActionStart)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// emitVolumeMounts publishes mount (or unmount) for each volume container
// id mounts.
func (e *Engine) emitVolumeMounts(ctx context.Context, id string, mounted bool) {
	ct, _, err := e.lookup(id)
	if err != nil {
		return
	}
	r := ct.Snapshot()
	for _, m := range r.Mounts {
		if m.Type != mounttypes.TypeVolume || m.Name == "" {
			continue
		}
		if !mounted {
			e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionUnmount, m.Name, map[string]string{"container": r.ID, "driver": volume.Driver})
			continue
		}
		e.Emit(ctx, evtypes.VolumeEventType, evtypes.ActionMount, m.Name, map[string]string{"container": r.ID, "destination": m.Destination,
			"driver": volume.Driver, "propagation": string(m.Propagation), "read/write": strconv.FormatBool(m.RW)})
	}
}
