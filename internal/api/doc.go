// Package api serves the Docker Engine REST API over HTTP: routes, a
// version gate, request decoding and validation, error classes turned
// into docker's statuses and {"message": …} bodies, and the stream
// formats (multiplexed stdout/stderr, JSON progress, hijacked
// connections). Wire shapes are the published types of
// github.com/moby/moby/api.
//
// Handlers are thin: parse, make one backend call, encode. The backend is
// a few small interfaces declared here, one per area (images, system,
// containers, exec); the daemon's Engine implements them. The package
// knows nothing of how images are stored or containers run, keeps no
// state of its own and owns nothing on disk; the listening sockets are
// cmd/berth's.
package api
