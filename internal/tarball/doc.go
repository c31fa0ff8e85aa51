// Package tarball reads and writes images as single tar files: the
// docker-archive format `docker save` writes (manifest.json, the config as
// <hex>.json, one tar per layer) and OCI image layouts (oci-layout,
// index.json, blobs/sha256/<hex>), gzipped or not.
//
// Load streams the tar once: every file is either kept in memory (small
// ones: manifest.json, configs, VERSION) or written straight into the
// content store, whose ingest verifies digests as the bytes pass. Only
// when the whole tar was read is it interpreted. A file under
// blobs/<alg>/<hex> must match its name; a docker-archive layer must match
// the diff ID its config lists. On any error the blobs Load added are
// deleted again, so a bad tar leaves nothing behind.
//
// Tar entry names never become host paths here (blobs are stored by
// digest), but a name or link that climbs out of the archive ("../x", "/x")
// is refused anyway: such an archive was not written by a friendly tool.
//
// It knows the content store and the image formats, nothing of
// snapshots, names in the image store or containers: Load returns image
// records for the caller to unpack and Put.
package tarball
