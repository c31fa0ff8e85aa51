// Package registry starts a real OCI distribution registry for tests:
// Debian's docker-registry (/usr/bin/docker-registry, package
// docker-registry) listening on 127.0.0.1 on a free port, with its storage
// in the test's temp dir. It can require htpasswd (basic) auth, or bearer
// tokens issued by a small token server of its own that signs JWTs with a
// throwaway ECDSA key. Proxy puts a fault-injecting reverse proxy in front
// of a registry for the hostile tests (5xx answers, connections closed in
// the middle of a blob, corrupted blobs, manifests replaced).
//
// Everything it starts is stopped and removed by t.Cleanup. It knows
// nothing of berth's stores; tests seed it with skopeo or berth's own push.
package registry
