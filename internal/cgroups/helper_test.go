package cgroups

import "os"

// helperMain runs the test binary as a helper process when the root tests
// re-exec it; it reports whether it did.
func helperMain() bool { return os.Getenv("BERTH_CGROUPS_HELPER") != "" && false }
