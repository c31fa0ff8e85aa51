// Package devicefilter turns OCI device cgroup rules into the eBPF program
// that cgroup v2 uses in place of the v1 devices controller, and attaches it
// to a cgroup directory.
//
// cgroup v2 has no devices.allow/devices.deny files: the kernel asks every
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (and its
// ancestors) and allows an access only if all of them return 1
// (Documentation/admin-guide/cgroup-v2.rst, "Device controller"). This
// package assembles that program by hand with golang.org/x/sys/unix rather
// than pull in an eBPF library: the program is a dozen instructions per rule
// and the syscalls are three (PROG_LOAD, PROG_ATTACH, PROG_DETACH).
//
// It knows nothing of containers, specs beyond the device rule type, or
// which cgroup version a host runs. It owns no files; the loaded program
// lives as long as it stays attached to its cgroup.
//
// API:
//
//	func Validate(r specs.LinuxDeviceCgroup) error
//	func Compile(rules []specs.LinuxDeviceCgroup) (*Program, error) // v1 devices semantics
//	func Effective(rules []specs.LinuxDeviceCgroup) ([]string, error) // as v1 devices.list would show
//	func (p *Program) Instructions() []Instruction
//	func Attach(dir string, p *Program) error // replaces the device programs attached there
//	func Detach(dir string) error
//
// The rules mean on v2 what they mean on v1: Compile runs them through the
// v1 controller's state machine (default plus exceptions) and a root test
// in package cgroups checks that model against a real v1 devices.list.
package devicefilter
