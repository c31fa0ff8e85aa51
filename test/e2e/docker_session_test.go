package e2e

import "testing"

// TestDockerSession runs the berth CLI's session, unchanged, with the
// real docker CLI against berth daemon.
func TestDockerSession(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	removeAllContainers(t, d)
	runSession(t, dockerRunner(d))
}
