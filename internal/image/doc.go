// Package image turns names into images: it normalises references the way
// docker does, parses Docker v2 schema 2 and OCI manifests, indexes and
// configs, selects a platform, and keeps the image store: which image
// (identified by its config digest) has which names, repo digests and
// target manifest. It garbage-collects by reference: when an image goes,
// the blobs and layer snapshots that no remaining image uses go with it.
//
// It reads blobs through internal/content and removes snapshots through a
// small interface; it knows nothing of registries, tar files or
// containers (whether a container uses an image is the caller's question,
// asked before Remove).
//
// On disk it owns one bbolt database (berth uses <root>/image/images.db):
//
//	images/<config digest>  → JSON Record
//	names/<normalised ref>  → config digest
//
// Every change is one bbolt transaction, so a crash leaves either the old
// or the new state, never half a tag move.
package image
