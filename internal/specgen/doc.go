// Package specgen turns an image's config and docker's run options
// (container.Config and container.HostConfig of the Engine API) into an OCI
// runtime spec, with Docker's defaults: its capability set, masked and
// read-only paths, default mounts and devices, and the default seccomp
// profile.
//
// Generate is pure: whatever needs the host or the container's root
// filesystem is resolved by the caller first — the user (LookupUser reads
// the rootfs's /etc/passwd and /etc/group without leaving the root),
// --device paths (HostDevice), namespace paths for container:<id> and
// network modes, and the sources of volumes and /etc files. It knows
// nothing about images in the store, containers' records or networks.
package specgen
