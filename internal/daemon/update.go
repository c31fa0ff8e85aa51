package daemon

import (
	"context"
	"fmt"

	containertypes "github.com/moby/moby/api/types/container"
	evtypes "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/specgen"
)

// ContainerRename gives a container a new name.
func (e *Engine) ContainerRename(ctx context.Context, ref, name string) error {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	old := r.Name
	if err := c.store.Rename(ct, name); err != nil {
		return err
	}
	if err := ct.Save(); err != nil {
		_ = c.store.Rename(ct, old)
		return err
	}
	e.emitContainer(ctx, evtypes.ActionRename, r, map[string]string{"oldName": "/" + old})
	return nil
}

// ContainerUpdate changes a container's resources and restart policy; a
// running container's cgroup gets the new limits at once.
func (e *Engine) ContainerUpdate(ctx context.Context, ref string, upd containertypes.UpdateConfig) (containertypes.UpdateResponse, error) {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return containertypes.UpdateResponse{}, err
	}
	ct.Lock()
	defer ct.Unlock()
	r := ct.R()
	host := *r.HostConfig
	mergeResources(&host.Resources, upd.Resources)
	if upd.RestartPolicy.Name != "" {
		if err := containertypes.ValidateRestartPolicy(upd.RestartPolicy); err != nil {
			return containertypes.UpdateResponse{}, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
		if host.AutoRemove && !upd.RestartPolicy.IsNone() {
			return containertypes.UpdateResponse{}, fmt.Errorf("Restart policy cannot be updated because AutoRemove is enabled for the container: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
		}
		host.RestartPolicy = upd.RestartPolicy
	}
	// specgen checks the limits and turns them into the OCI form.
	probe := host
	spec, err := specgen.Generate(specgen.Input{ID: r.ID, Config: r.Config, Host: &probe, Rootfs: "/", InitBinary: "/probe"})
	if err != nil {
		return containertypes.UpdateResponse{}, err
	}
	if r.State.IsRunning() {
		rc, err := c.rt.Load(ctx, r.ID)
		if err != nil {
			return containertypes.UpdateResponse{}, fmt.Errorf("update %s: %w", r.ID, err)
		}
		res := spec.Linux.Resources
		res.Devices = nil // unchanged by update
		if err := rc.Update(ctx, res); err != nil {
			return containertypes.UpdateResponse{}, fmt.Errorf("Cannot update container %s: %w", r.ID, err) //nolint:staticcheck // docker's words
		}
	} else if r.State.Status == container.Removing || r.State.Status == container.Dead {
		return containertypes.UpdateResponse{}, fmt.Errorf("container %s is marked for removal: %w", r.ID, errdefs.ErrConflict)
	}
	r.HostConfig = &host
	if err := ct.Save(); err != nil {
		return containertypes.UpdateResponse{}, err
	}
	e.emitContainer(ctx, evtypes.ActionUpdate, r, nil)
	return containertypes.UpdateResponse{Warnings: []string{}}, nil
}

// mergeResources sets in dst the fields upd sets (docker's update: a
// zero value leaves the current one).
func mergeResources(dst *containertypes.Resources, upd containertypes.Resources) {
	if upd.BlkioWeight != 0 {
		dst.BlkioWeight = upd.BlkioWeight
	}
	if upd.CPUShares != 0 {
		dst.CPUShares = upd.CPUShares
	}
	if upd.CPUPeriod != 0 {
		dst.CPUPeriod = upd.CPUPeriod
	}
	if upd.CPUQuota != 0 {
		dst.CPUQuota = upd.CPUQuota
	}
	if upd.NanoCPUs != 0 {
		dst.NanoCPUs = upd.NanoCPUs
	}
	if upd.CpusetCpus != "" {
		dst.CpusetCpus = upd.CpusetCpus
	}
	if upd.CpusetMems != "" {
		dst.CpusetMems = upd.CpusetMems
	}
	if upd.Memory != 0 {
		dst.Memory = upd.Memory
	}
	if upd.MemoryReservation != 0 {
		dst.MemoryReservation = upd.MemoryReservation
	}
	if upd.MemorySwap != 0 {
		dst.MemorySwap = upd.MemorySwap
	}
	if upd.PidsLimit != nil {
		dst.PidsLimit = upd.PidsLimit
	}
	if upd.CPURealtimePeriod != 0 {
		dst.CPURealtimePeriod = upd.CPURealtimePeriod
	}
	if upd.CPURealtimeRuntime != 0 {
		dst.CPURealtimeRuntime = upd.CPURealtimeRuntime
	}
}
