//go:build !cgo

package monitor

// Without cgo the Go monitor holds the container itself (more memory).
const holderLinked = false
