// Package engines holds end-to-end tests in which other engines drive
// berth-runtime through its runc-compatible CLI: podman with --runtime, and
// dockerd with --add-runtime. Each test runs, execs into, stops and removes
// a container from the busybox test image, and skips with the Debian
// package to install when the engine is missing.
package engines
