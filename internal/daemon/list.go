package daemon

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
)

// ContainerListOptions select containers as docker ps does.
type ContainerListOptions struct {
	// All includes stopped containers (ps -a).
	All bool
	// Limit keeps the n newest, stopped ones included (ps -n); <= 0: all.
	Limit int
	// Size fills SizeRw and SizeRootFs.
	Size bool
	// Filters: id, name, label, status, ancestor, exited, before, since,
	// volume, network, health.
	Filters Filters
}

// ContainerList lists containers, newest first.
func (e *Engine) ContainerList(ctx context.Context, opts ContainerListOptions) ([]containertypes.Summary, error) {
	c, err := e.ctrs()
	if err != nil {
		return nil, err
	}
	f := opts.Filters
	if err := f.check("id", "name", "label", "label!", "status", "ancestor", "exited", "before", "since", "volume", "network", "health", "is-task"); err != nil {
		return nil, err
	}
	for _, s := range f["status"] {
		if containertypes.ValidateContainerState(containertypes.ContainerState(s)) != nil {
			return nil, fmt.Errorf("invalid filter 'status=%s': %w", s, errdefs.ErrInvalidArgument)
		}
	}
	var exited []int
	for _, v := range f["exited"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'exited=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		exited = append(exited, n)
	}
	var names []*regexp.Regexp
	for _, v := range f["name"] {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'name=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		names = append(names, re)
	}
	var ancestors []string
	for _, a := range f["ancestor"] {
		if img, err := e.images.Lookup(ctx, a); err == nil {
			ancestors = append(ancestors, img.ID.String())
		}
		ancestors = append(ancestors, a)
	}
	var before, since time.Time
	for _, k := range []string{"before", "since"} {
		for _, v := range f[k] {
			other, err := c.store.Get(v)
			if err != nil {
				return nil, err
			}
			t := other.Snapshot().Created
			if k == "before" {
				before = t
			} else {
				since = t
			}
		}
	}
	all := opts.All || opts.Limit > 0 || !before.IsZero() || !since.IsZero() || len(f["status"]) > 0 || len(exited) > 0
	var out []containertypes.Summary
	for _, ct := range c.store.List() {
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
		r := ct.Snapshot()
		st := r.State.Status
		if !all && st != container.Running && st != container.Paused && st != container.Restarting {
			continue
		}
		if !matchAny(f["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) ||
			!matchAny(f["status"], func(v string) bool { return v == string(st) }) ||
			!f.labels("label", r.Config.Labels) || !notLabels(f, r.Config.Labels) ||
			!matchAny(ancestors, func(v string) bool { return v == r.Image || v == r.ImageName }) ||
			!matchAny(f["volume"], func(v string) bool { return usesVolume(r, v) }) ||
			!matchAny(f["network"], func(v string) bool {
				_, ok := e.recordNetworks(&r)[v]
				return ok || v == string(r.HostConfig.NetworkMode)
			}) ||
			!matchAny(f["health"], func(v string) bool { return healthStatus(r) == v }) {
			continue
		}
		if len(names) > 0 {
			ok := false
			for _, re := range names {
				ok = ok || re.MatchString("/"+r.Name)
			}
			if !ok {
				continue
			}
		}
		if len(exited) > 0 {
			ok := false
			for _, n := range exited {
				ok = ok || st == container.Exited && r.State.ExitCode == n
			}
			if !ok {
				continue
			}
		}
		if !before.IsZero() && !r.Created.Before(before) || !since.IsZero() && !r.Created.After(since) {
			continue
		}
		out = append(out, e.summary(ctx, r, opts.Size))
	}
	return out, nil
}

func matchAny(vals []string, fn func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if fn(v) {
			return true
		}
	}
	return false
}

func usesVolume(r container.Record, v string) bool {
	for _, m := range r.Mounts {
		if m.Name == v || m.Destination == v {
			return true
		}
	}
	return false
}

func healthStatus(r container.Record) string {
	if r.State.Health == nil {
		return string(containertypes.NoHealthcheck)
	}
	return string(r.State.Health.Status)
}

func (e *Engine) summary(ctx context.Context, r container.Record, size bool) containertypes.Summary {
	cmd := r.Path
	if len(r.Args) > 0 {
		cmd += " " + strings.Join(r.Args, " ")
	}
	s := containertypes.Summary{
		ID:      r.ID,
		Names:   []string{"/" + r.Name},
		Image:   r.ImageName,
		ImageID: r.Image,
		Command: cmd,
		Created: r.Created.Unix(),
		Ports:   []containertypes.PortSummary{},
		Labels:  r.Config.Labels,
		State:   r.State.Status,
		Status:  statusText(r, time.Now()),
		Mounts:  mountPoints(r.Mounts),
		NetworkSettings: &containertypes.NetworkSettingsSummary{
			Networks: e.recordNetworks(&r),
		},
	}
	if nets, ports, ok := e.networkSettings(r.ID); ok {
		s.NetworkSettings.Networks = nets
		for p, bs := range ports {
			for _, b := range bs {
				hp, _ := strconv.Atoi(b.HostPort)
				s.Ports = append(s.Ports, containertypes.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
			}
		}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "none"
	}
	if r.State.Health != nil {
		s.Health = &containertypes.HealthSummary{Status: r.State.Health.Status, FailingStreak: r.State.Health.FailingStreak}
	}
	if size {
		s.SizeRw = e.sizeRw(ctx, r.SnapshotKey)
		s.SizeRootFs = s.SizeRw + e.imageSize(ctx, r.Image)
	}
	return s
}

// statusText is ps's STATUS column, in docker's words.
func statusText(r container.Record, now time.Time) string {
	st := r.State
	switch st.Status {
	case container.Running, container.Paused:
		s := "Up " + units.HumanDuration(now.Sub(st.StartedAt))
		if st.Status == container.Paused {
			s += " (Paused)"
		} else if st.Health != nil {
			s += " (" + string(st.Health.Status) + ")"
		}
		return s
	case container.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.Removing:
		return "Removal In Progress"
	case container.Dead:
		return "Dead"
	case container.Exited:
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	}
	return "Created"
}

// untilFilter reads the until= filter (the latest given).
func untilFilter(f Filters) (time.Time, error) {
	var until time.Time
	for _, u := range f["until"] {
		t, err := parseTime(u, time.Now())
		if err != nil {
			return time.Time{}, err
		}
		until = t
	}
	return until, nil
}
