// Package e2e runs berth as users do: a real `berth daemon` on its own
// root, exec root and socket, driven by the real docker CLI
// (/usr/local/bin/docker with DOCKER_HOST), the berth CLI and
// internal/client, against a real registry (Debian's docker-registry) on
// 127.0.0.1. Tests are grouped by API area, one file each; main_test.go
// holds the shared helpers (StartDaemon, Docker, Berth, Client).
//
// It owns nothing outside its tests' temporary directories, and every
// daemon it starts is stopped (and its socket and pid file checked gone)
// before the test's leak check runs.
package e2e
