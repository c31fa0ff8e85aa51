package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Main runs a package's tests and, as root, fails the run if the package as
// a whole leaked resources. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that has its own cleanup to do after the
// tests: it returns the exit code instead of exiting.
func Run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	before := TakeSnapshot()
	code := m.Run()
	if leaks := LeaksSince(before); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "package leaked resources:\n  %s\n", strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	return code
}
