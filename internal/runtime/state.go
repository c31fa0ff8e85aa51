package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Status is a container's place in the OCI state machine (runtime.md),
// plus runc's "paused".
type Status string

const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// record is what the runtime keeps on disk for one container, in
// <root>/<id>/state.json. It is written atomically (temp file, fsync, rename).
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Status      Status            `json:"status"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"` // /proc/<pid>/stat starttime, against pid reuse
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Cgroups     map[string]string `json:"cgroups,omitempty"` // cgroups.Manager.Paths()
	Owner       string            `json:"owner,omitempty"`
	// What start, kill and delete need to know of the spec, so that they
	// need not decode it: a cold decode of a spec costs about a millisecond.
	OwnPidNS  bool `json:"ownPidns,omitempty"`
	Poststart bool `json:"poststart,omitempty"`
	Poststop  bool `json:"poststop,omitempty"`
	// RawSpec is the spec as JSON; Spec is it decoded, on first use.
	RawSpec json.RawMessage `json:"spec"`
	Spec    *specs.Spec     `json:"-"`
}

// spec returns the decoded spec.
func (r *record) spec() (*specs.Spec, error) {
	if r.Spec == nil {
		var s specs.Spec
		if err := json.Unmarshal(r.RawSpec, &s); err != nil {
			return nil, fmt.Errorf("decode spec of %s: %w", r.ID, err)
		}
		r.Spec = &s
	}
	return r.Spec, nil
}

const stateFile = "state.json"

func (r *record) save(dir string) error {
	if r.Spec != nil {
		raw, err := json.Marshal(r.Spec)
		if err != nil {
			return err
		}
		r.RawSpec = raw
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), b, 0o600)
}

func loadRecord(dir, id string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// runc's words: containerd and podman match "does not exist".
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode state of %s: %w", id, err)
	}
	return &r, nil
}

// writeFileAtomic writes to a temp file in the same directory, fsyncs it and
// renames it over name, so a reader sees the old or the new content, never
// a torn one.
func writeFileAtomic(name string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// procStart returns the start time of pid (field 22 of /proc/<pid>/stat)
// and whether it is a zombie, or ok=false when there is no such process.
func procStart(pid int) (start uint64, zombie, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, false
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false, false
	}
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z" || f[0] == "X", true
}
