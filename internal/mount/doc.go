// Package mount describes a filesystem mount as a plain value and performs
// it. Snapshotters return Mount values and never mount anything; the runtime
// and tests call Mount.Mount or All to make them real, and Unmount to undo.
//
// It knows nothing about images, snapshots or containers, and owns nothing
// on disk.
//
// Overlay mounts carry one lowerdir per image layer. The classic mount(2)
// call takes all options as one page of data (4096 bytes here), which a deep
// image overflows; when the options do not fit, Mount switches to the new
// mount API (fsopen/fsconfig/fsmount/move_mount) and passes each lower layer
// on its own with "lowerdir+" (Linux 6.8 and later), so only the per-string
// limit of a page applies to each path. On older kernels it falls back to
// naming each layer by a short /proc/self/fd/N path, which fits about 200
// layers in a page.
package mount
