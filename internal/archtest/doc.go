// Package archtest holds no code, only a test: it fails when an import
// points upward in berth's layering (cmd → api → daemon → stores → leaves),
// or when the runtime side and the image side come to know each other.
package archtest
