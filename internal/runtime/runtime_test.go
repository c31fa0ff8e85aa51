package runtime

import (
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestRunEcho(t *testing.T) {
	testutil.RequireRoot(t)
	rt := newRuntime(t)
	b := newBundle(t, shell("echo hello $(hostname) $$; exit 3"))
	out, code := runContainer(t, rt, "echo", b)
	if out != "hello berth 1" || code != 3 {
		t.Fatalf("got %q, exit %d; want %q, exit 3", out, code, "hello berth 1")
	}
}
