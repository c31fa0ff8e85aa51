//go:build cgo

package monitor

// Importing "C" compiles holder.c into every binary that links this
// package; its constructor is the C holder a monitor execs into once its
// container exists (see holder.c and handOver).

// #cgo CFLAGS: -Wall -Wextra -O2
import "C"

// holderLinked reports whether the C holder is in this binary.
const holderLinked = true
