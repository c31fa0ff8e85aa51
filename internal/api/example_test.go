package api_test

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/berth-dev/berth/internal/api"
)

// ExampleNewMuxWriters frames a container's stdout and stderr onto one
// stream, as logs and attach send them without a tty; any docker client
// splits it again (here moby's own stdcopy).
func ExampleNewMuxWriters() {
	var wire bytes.Buffer
	stdout, stderr := api.NewMuxWriters(&wire)
	io.WriteString(stdout, "hello\n")
	io.WriteString(stderr, "warning\n")

	var errs bytes.Buffer
	stdcopy.StdCopy(os.Stdout, &errs, &wire)
	fmt.Print("stderr: ", errs.String())
	// Output:
	// hello
	// stderr: warning
}
