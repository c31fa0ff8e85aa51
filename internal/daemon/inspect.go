package daemon

import (
	"context"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/snapshot"
)

// ContainerInspect is docker inspect's document of a container; with
// size, SizeRw (the writable layer) and SizeRootFs (that plus the image).
func (e *Engine) ContainerInspect(ctx context.Context, ref string, size bool) (containertypes.InspectResponse, error) {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return containertypes.InspectResponse{}, err
	}
	r := ct.Snapshot()
	cfg := *r.Config
	host := *r.HostConfig
	res := containertypes.InspectResponse{
		ID:             r.ID,
		Created:        r.Created.UTC().Format(time.RFC3339Nano),
		Path:           r.Path,
		Args:           r.Args,
		State:          r.State.API(),
		Image:          r.Image,
		ResolvConfPath: r.ResolvConfPath,
		HostnamePath:   r.HostnamePath,
		HostsPath:      r.HostsPath,
		LogPath:        r.LogPath,
		Name:           "/" + r.Name,
		RestartCount:   r.RestartCount,
		Driver:         r.Driver,
		Platform:       "linux",
		ExecIDs:        e.ExecIDs(r.ID),
		HostConfig:     &host,
		GraphDriver:    e.graphDriver(ctx, r.SnapshotKey),
		Mounts:         mountPoints(r.Mounts),
		Config:         &cfg,
		NetworkSettings: &containertypes.NetworkSettings{
			Ports:    network.PortMap{},
			Networks: e.recordNetworks(&r),
		},
	}
	if _, ok := res.GraphDriver.Data["UpperDir"]; ok {
		res.GraphDriver.Data["MergedDir"] = c.rootfsDir(r.ID)
	}
	if nets, ports, ok := e.networkSettings(r.ID); ok {
		res.NetworkSettings.Networks, res.NetworkSettings.Ports = nets, ports
	}
	if res.Args == nil {
		res.Args = []string{}
	}
	if size {
		rw := e.sizeRw(ctx, r.SnapshotKey)
		rootfs := rw + e.imageSize(ctx, r.Image)
		res.SizeRw, res.SizeRootFs = &rw, &rootfs
	}
	return res, nil
}

// mountPoints is the record's mounts as inspect shows them ([] not null).
func mountPoints(mps []containertypes.MountPoint) []containertypes.MountPoint {
	out := make([]containertypes.MountPoint, 0, len(mps))
	for _, m := range mps {
		if m.Type == "tmpfs" {
			m.Mode = "" // berth keeps size and mode there; docker shows none
		}
		out = append(out, m)
	}
	return out
}

// graphDriver describes the writable layer's directories (overlay's
// upper, work and lower dirs), as docker's GraphDriver.Data.
func (e *Engine) graphDriver(ctx context.Context, key string) *storage.DriverData {
	d := &storage.DriverData{Name: e.driver, Data: map[string]string{}}
	ms, err := e.snaps.Mounts(ctx, key)
	if err != nil || len(ms) != 1 {
		return d
	}
	m := ms[0]
	for _, k := range []struct{ opt, name string }{{"upperdir", "UpperDir"}, {"workdir", "WorkDir"}, {"lowerdir", "LowerDir"}} {
		if v, ok := m.Option(k.opt); ok {
			d.Data[k.name] = v
		}
	}
	if m.Type == "bind" {
		d.Data["UpperDir"] = m.Source
	}
	return d
}

// sizeRw is the writable layer's own size, 0 if unknown.
func (e *Engine) sizeRw(ctx context.Context, key string) int64 {
	if s, ok := e.snaps.(snapshot.Sizer); ok {
		if n, err := s.Size(ctx, key); err == nil {
			return n
		}
	}
	return 0
}

// imageSize is the unpacked size of image id, 0 if gone.
func (e *Engine) imageSize(ctx context.Context, id string) int64 {
	r, err := e.images.Get(ctx, digest.Digest(id))
	if err != nil {
		return 0
	}
	return r.Size
}
