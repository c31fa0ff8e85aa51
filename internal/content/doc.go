// Package content stores blobs addressed by their sha256 digest: image
// manifests, configs and compressed layers, exactly as a registry or an
// archive delivered them.
//
// Every blob is verified while it is written and appears under its digest
// only after its size and digest matched, it was fsynced and renamed into
// place, so a crash never leaves a blob whose bytes disagree with its name.
// Blobs are immutable once committed; two writers of the same digest race
// harmlessly, because both would rename identical bytes into place.
//
// It knows nothing of images, names, manifests or references: what keeps a
// blob alive is decided above (internal/image garbage-collects by
// reference and calls Delete).
//
// On disk, under the directory given to Open (berth uses <root>/content):
//
//	blobs/sha256/<hex>   committed blobs, read-only (0444)
//	ingest/<random>      blobs being written; removed at Open when no other
//	                     Store holds the directory (leftovers of a crash)
//	lock                 flock: shared while a Store is open, exclusive
//	                     for the moment of cleaning ingest/
package content
