// Package container keeps the engine's container records: identity and
// names, the docker run configuration (container.Config and HostConfig of
// the Engine API), the writable layer's snapshot key, and the state
// machine docker shows (created, running, paused, restarting, removing,
// exited, dead) as one table of allowed transitions, with the exit code,
// OOM flag, pid, start and finish times, restart count and health.
//
// It knows nothing of images, snapshots, the runtime or the monitor: the
// daemon resolves those and records the outcome here. Waiting for a state
// (docker wait's not-running, next-exit and removed conditions) is part of
// the state machine, so it lives here too.
//
// On disk it owns <root>/containers/<id>/config.v2.json, one file per
// container, written atomically (temp file, fsync, rename), and reads them
// all back when the Store opens. Other files in <root>/containers/<id>/
// (hostname, hosts, resolv.conf, the bundle) belong to the daemon.
package container
