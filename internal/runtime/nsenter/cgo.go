//go:build cgo

package nsenter

// Importing "C" compiles nsenter.c into every binary that links this
// package; its constructor is the half that runs before the Go runtime.

// #cgo CFLAGS: -Wall -Wextra -O2
import "C"

// linked reports whether the constructor is in this binary.
const linked = true
