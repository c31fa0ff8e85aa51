// Package netns makes, hands out and removes network namespaces as files:
// each namespace is bind-mounted on a path the caller chooses (the engine
// uses <exec-root>/netns/<container-id>), so the runtime can join it by path
// and the namespace outlives the process that made it.
//
// A Pool keeps a few namespaces made in advance, loopback already up, held
// only by open file descriptors: taking one costs a single bind mount
// instead of unshare(CLONE_NEWNET) plus the netlink work, which takes a new
// namespace off a container's start path. Pooled namespaces die with the
// process that holds them (nothing on disk), so a daemon crash leaks none.
//
// A runtime that copies the host's mounts into a container's new mount
// namespace copies these bind mounts too, and a copy keeps its namespace
// alive after Remove until the runtime detaches the old root (pivot_root,
// then umount2(MNT_DETACH), as runc and berth-runtime do).
//
// It knows nothing of containers, bridges or addresses. It owns the files it
// mounts and nothing else.
package netns
