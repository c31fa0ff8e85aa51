package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
)

// ContainerTop lists the container's processes as ps(1) on the host shows
// them with psArgs (default "-ef"), keeping the rows whose PID is in the
// container's cgroup, as docker does.
func (e *Engine) ContainerTop(ctx context.Context, ref, psArgs string) (containertypes.TopResponse, error) {
	ct, c, err := e.lookup(ref)
	if err != nil {
		return containertypes.TopResponse{}, err
	}
	r := ct.Snapshot()
	if r.State.Status != container.Running && r.State.Status != container.Paused {
		return containertypes.TopResponse{}, errNotRunning(r.ID)
	}
	rc, err := c.rt.Load(ctx, r.ID)
	if err != nil {
		return containertypes.TopResponse{}, fmt.Errorf("top %s: %w", r.ID, err)
	}
	pids, err := rc.Processes(ctx)
	if err != nil {
		return containertypes.TopResponse{}, fmt.Errorf("top %s: %w", r.ID, err)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	args := strings.Fields(psArgs)
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return containertypes.TopResponse{}, fmt.Errorf("ps %s: %s: %w", psArgs, msg, errdefs.ErrInvalidArgument)
	}
	return parsePS(string(out), pids)
}

// parsePS keeps the rows of ps output whose PID column is in pids. The
// last column (the command) may hold spaces: a row is split into as many
// fields as the header has.
func parsePS(out string, pids []int) (containertypes.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return containertypes.TopResponse{}, fmt.Errorf("ps: no output: %w", errdefs.ErrInvalidArgument)
	}
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return containertypes.TopResponse{}, fmt.Errorf("Couldn't find PID field in ps output: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	in := make(map[int]bool, len(pids))
	for _, p := range pids {
		in[p] = true
	}
	res := containertypes.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := splitN(l, len(titles))
		if len(f) <= pidCol {
			continue
		}
		p, err := strconv.Atoi(f[pidCol])
		if err != nil || !in[p] {
			continue
		}
		res.Processes = append(res.Processes, f)
	}
	return res, nil
}

// splitN splits s on runs of blanks into at most n fields; the last keeps
// its inner blanks.
func splitN(s string, n int) []string {
	var out []string
	s = strings.TrimLeft(s, " \t")
	for len(out) < n-1 && s != "" {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			break
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i:], " \t")
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
