package cgroups

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

const helperEnv = "BERTH_CGROUPS_HELPER"

// helperMain runs the test binary as a helper process when a root test
// re-execs it, and reports whether it did. Every helper waits for a line on
// stdin first, so the test can move it into a cgroup before it acts.
func helperMain() bool {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return false
	}
	var b [1]byte
	_, _ = os.Stdin.Read(b[:])
	switch mode {
	case "alloc":
		// Touch every page so the memory is charged, not just reserved.
		var keep [][]byte
		for range 512 {
			chunk := make([]byte, 1<<20)
			for i := 0; i < len(chunk); i += 4096 {
				chunk[i] = 1
			}
			keep = append(keep, chunk)
		}
		fmt.Println("survived", len(keep))
	case "open":
		for _, dev := range []string{"/dev/null", "/dev/zero"} {
			f, err := os.Open(dev)
			if err != nil {
				fmt.Printf("%s=%v\n", dev, err)
				continue
			}
			f.Close()
			fmt.Printf("%s=ok\n", dev)
		}
	}
	os.Exit(0)
	return true
}

// proc is a helper process started by a test.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bytes.Buffer
	done  chan struct{}
	state *os.ProcessState
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// release lets the helper past its stdin gate.
func (p *proc) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *proc) wait(t *testing.T, timeout time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.done:
		return p.state
	case <-time.After(timeout):
		t.Fatalf("helper %d still running after %v; output %q", p.pid(), timeout, p.out.String())
		return nil
	}
}

var outMu sync.Mutex

type lockedWriter struct{ b *bytes.Buffer }

func (w lockedWriter) Write(p []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return w.b.Write(p)
}

// start runs cmd with a stdin gate and kills it (by its pid) and reaps it
// in t.Cleanup.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	cmd.Stdout = lockedWriter{p.out}
	cmd.Stderr = lockedWriter{p.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func startGo(t *testing.T, mode string) *proc {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return start(t, cmd)
}

// startSh runs a busybox shell script from the test image; the script
// should begin with "read x" to wait for release.
func startSh(t *testing.T, script string) *proc {
	t.Helper()
	bb := filepath.Join(testutil.Images(t).Rootfs, "bin", "busybox")
	cmd := exec.Command(bb, "sh", "-c", script)
	cmd.Env = []string{"BB=" + bb, "PATH=/nonexistent"}
	return start(t, cmd)
}

func output(p *proc) string {
	outMu.Lock()
	defer outMu.Unlock()
	return p.out.String()
}

// cpuTicks reads utime+stime of pid from /proc/<pid>/stat.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces; fields count from after ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

func testID(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

func signaled(st *os.ProcessState, sig unix.Signal) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.Signal(sig)
}
