// Package snapshot keeps filesystem layers as parent/child snapshots. It
// knows nothing about images, tar or containers: a snapshot is a directory
// tree with a name, a parent and a kind, and the unpack package fills it.
//
// A Snapshotter returns []mount.Mount and never mounts anything itself; the
// caller (runtime, unpack, tests) performs the mounts. Two implementations
// live below: overlay (the default, one upper directory per layer) and copy
// ("vfs": each snapshot is a full copy of its parent, for filesystems that
// cannot host overlay, such as overlay itself). drivers.Open picks one by a
// probe mount or by name.
//
// On disk each driver owns <root>/snapshots/<driver>/ (see package meta for
// the layout: one small JSON file per snapshot plus a directory named by a
// short number, so overlay's mount data stays small).
package snapshot
