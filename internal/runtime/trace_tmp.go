package runtime

import (
	"fmt"
	"os"
	"time"
)

var traceStart = time.Now()
var traceOn = os.Getenv("BERTH_TRACE") != ""

func tr(what string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "%8.2fms %d %s\n", float64(time.Since(traceStart).Microseconds())/1000, os.Getpid(), what)
	}
}

func traceEnv() []string {
	if traceOn {
		return []string{"BERTH_TRACE=1"}
	}
	return nil
}
