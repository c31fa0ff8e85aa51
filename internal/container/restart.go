package container

import (
	"time"

	"github.com/moby/moby/api/types/container"
)

// Docker's restart back-off: the first restart waits 100 ms, each next one
// twice as long, up to a minute; a run of at least 10 s resets it.
const (
	BackoffStart = 100 * time.Millisecond
	BackoffMax   = time.Minute
	BackoffReset = 10 * time.Second
)

// ShouldRestart says whether policy restarts a container that exited with
// code after restarts so far. manual is a stop or kill through the API
// (never restarted); daemonStart asks on behalf of a daemon that just
// started, where unless-stopped differs from always only in treating a
// container stopped by the user as stopped for good (both do here since
// manual already excludes it) and "no"/on-failure do not revive a
// container that exited cleanly.
func ShouldRestart(p container.RestartPolicy, code, restarts int, manual bool) bool {
	if manual {
		return false
	}
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// NextBackoff is the delay before the next restart: prev doubled (or the
// start value), unless the container ran for BackoffReset or longer.
func NextBackoff(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= BackoffReset {
		return BackoffStart
	}
	next := prev * 2
	if next > BackoffMax {
		next = BackoffMax
	}
	return next
}
