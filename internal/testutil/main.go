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
func Main(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	before := TakeSnapshot()
	code := m.Run()
	if leaks := LeaksSince(before); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "package leaked resources:\n  %s\n", strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
