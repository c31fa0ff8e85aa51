// Package volume keeps local volumes as docker's "local" driver does: a
// volume is a directory <root>/volumes/<name>/_data, named by the user or
// anonymous (64 hex characters, made for one container, labelled
// com.docker.volume.anonymous), with its labels, driver options and
// creation time beside it in <root>/volumes/<name>/meta.json (written
// atomically).
//
// A volume made with the local driver's options (type, device, o) has a
// filesystem mounted on its _data: a tmpfs, or a bind of a host directory
// (type=none, o=bind). It is mounted when the volume is created, mounted
// again when the store opens after a reboot, and unmounted when the
// volume is removed; other filesystem types are refused.
//
// A subpath of a volume (--mount volume-subpath=) is resolved inside the
// volume with openat2(RESOLVE_BENEATH) and the directory found is
// bind-mounted ("pinned") at <root>/volumes/<name>/pins/<key>: a
// container binds the pin, never a path a process in another container
// could later turn into a symlink out of the volume. Pins live until the
// volume is removed; <key>.subpath beside each says what it pins, so the
// store pins it again after a reboot.
//
// It knows nothing of containers: the engine records which container
// uses which volume and refuses to remove one in use.
package volume
