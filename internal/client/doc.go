// Package client is a small Go client for the Docker Engine API as berth
// serves it: over a unix socket or tcp (with TLS), with API version
// negotiation, typed methods in the published wire types of
// github.com/moby/moby/api, and the stream formats (JSON progress,
// events, multiplexed logs, hijacked attach and exec).
//
// Error statuses come back as errdefs classes, so errors.Is(err,
// errdefs.ErrNotFound) holds from the Engine through HTTP to the caller.
// It knows nothing of the daemon's internals and must not import them
// (the berth CLI and the e2e tests use it as any client would).
package client
