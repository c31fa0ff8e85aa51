// Package archive turns layer tarballs into directories and directories
// back into layer tarballs.
//
// Apply extracts a layer (plain, gzip or zstd, told apart by magic number)
// into a directory and returns its diffID, the sha256 of the uncompressed
// tar stream, for the caller to check against the image config. Whiteouts
// (".wh.NAME", ".wh..wh..opq") are either written in overlayfs's own form
// or applied as deletions, by option. Every path the tar names, every
// symlink it creates and every hard link it makes resolve inside the
// destination, the way they would in a chroot: each parent directory is
// opened with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) relative to the
// destination and the entry is made with the *at calls relative to that
// descriptor, so "../", absolute symlinks and links through links can never
// reach the host's files.
//
// WriteOverlayDiff and WriteDiff go the other way: an overlay upper
// directory, or the difference between a directory and its parent, as a
// layer tar with whiteouts.
//
// It knows nothing about images, snapshots or mounts and owns nothing on
// disk beyond the directories it is handed.
package archive
