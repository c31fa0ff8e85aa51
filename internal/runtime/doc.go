// Package runtime turns an OCI bundle (config.json + rootfs) into a running,
// isolated process, as the OCI runtime specification describes: create,
// start, state, kill, delete, plus runc's pause, resume, update, exec, ps
// and stats. It is a library the engine calls in-process; cmd/berth-runtime
// is a thin runc-compatible CLI over it.
//
// It knows nothing of images, snapshots, networks or the daemon. It owns
// <root>/<id>/ (default root /run/berth-runtime): state.json (written
// atomically) and exec.fifo, and the container's cgroups through
// internal/cgroups.
//
// The full description of what is implemented is at the end of this file's
// package documentation, kept up to date with the code.
package runtime
