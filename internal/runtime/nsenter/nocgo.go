//go:build !cgo

package nsenter

// Without cgo there is no constructor, and a Go process cannot join a mount
// or user namespace: Prepare says so instead of starting a child that would
// ignore its config.
const linked = false
