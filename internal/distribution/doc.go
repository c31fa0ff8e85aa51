// Package distribution pulls images from and pushes them to registries
// that speak the OCI distribution protocol (Docker Registry HTTP API v2).
//
// Pull resolves a reference to a manifest (through a manifest list or OCI
// index to the requested platform), then fetches the config and every
// layer in parallel, streaming each blob into the content store, verified
// against its digest, and hands each layer to the caller as soon as it is
// committed, so unpacking overlaps the download. Blobs already in the store
// are not fetched again. A blob whose transfer breaks off (or goes quiet
// for Config.StallTimeout) is resumed where it stopped with a Range
// request, after a backoff, or fetched again when the registry serves no
// ranges; nothing half-written is ever visible.
// Push uploads what the registry lacks (a HEAD first), mounts blobs across
// repositories of the same registry where the image came from, then puts
// the manifest, unchanged, so the pushed digest is the stored one.
//
// The wire protocol comes from github.com/google/go-containerregistry:
// package name (reference parsing against the registry's rules), transport
// (the WWW-Authenticate challenge flow: anonymous, basic, bearer tokens with
// scope, and retries of 5xx answers and dropped requests) and remote (the
// manifest, blob and upload endpoints, with blob reads verified against
// their digest). It is Google's, used by crane, ko and many registries'
// tests, follows the distribution spec closely and is small to depend on
// for what it gives. It has no ranged blob reads: the resume request is the
// one request berth builds itself, sent through go-containerregistry's
// authenticating transport. Its image, layout and tarball packages are not used:
// blobs go into berth's own content store (internal/content), and manifest
// rules (which media types, which platform) are internal/image's, so pull,
// load and the image store agree on them.
//
// What this package must not know: how layers are unpacked (the caller's
// Layer callback decides), the image store's names and tags (the daemon
// records the result), where credentials live (package credentials reads
// and writes docker's config.json; the caller passes an AuthConfig), and
// anything about containers. It owns nothing on disk (it only reads
// Config.CertsDir).
//
// Plain HTTP is used only for loopback registries (localhost, 127.0.0.0/8,
// ::1) and those configured insecure; any other request over http is
// refused, even where go-containerregistry would fall back to it (it does
// for RFC 1918 addresses), so credentials never cross a network in clear.
// HTTPS trusts the system's CAs, plus, per registry, those in the
// Config.CertsDir directory laid out as docker's /etc/docker/certs.d.
package distribution
