package seccomp

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

//go:generate go run mktables.go

// x32SyscallBit is set in the number of every syscall made through the x32
// ABI. x32 shares AUDIT_ARCH_X86_64 with x86_64, so this bit is the only
// thing that tells the two apart in seccomp_data (arch/x86/include/uapi/asm/unistd.h).
const x32SyscallBit = 0x40000000

// arch is one syscall ABI a filter can name.
type arch struct {
	name  specs.Arch
	audit uint32            // AUDIT_ARCH_* as the kernel puts it in seccomp_data.arch
	table map[string]uint32 // name → number; nil when berth has no table for it
	// args32 marks ABIs whose arguments are 32-bit registers: the kernel
	// zero-extends them into seccomp_data.args, so only the low halves are
	// compared, as libseccomp does for 32-bit arches.
	args32 bool
}

// The audit numbers are AUDIT_ARCH_* from include/uapi/linux/audit.h:
// EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000).
var arches = map[specs.Arch]*arch{
	specs.ArchX86_64:      {name: specs.ArchX86_64, audit: 0xc000003e, table: tableX86_64},
	specs.ArchX86:         {name: specs.ArchX86, audit: 0x40000003, table: tableX86, args32: true},
	specs.ArchX32:         {name: specs.ArchX32, audit: 0xc000003e, table: tableX32},
	specs.ArchAARCH64:     {name: specs.ArchAARCH64, audit: 0xc00000b7, table: tableAARCH64},
	specs.ArchARM:         {name: specs.ArchARM, audit: 0x40000028, table: tableARM, args32: true},
	specs.ArchMIPS:        {name: specs.ArchMIPS, audit: 0x00000008},
	specs.ArchMIPS64:      {name: specs.ArchMIPS64, audit: 0x80000008},
	specs.ArchMIPS64N32:   {name: specs.ArchMIPS64N32, audit: 0xa0000008},
	specs.ArchMIPSEL:      {name: specs.ArchMIPSEL, audit: 0x40000008},
	specs.ArchMIPSEL64:    {name: specs.ArchMIPSEL64, audit: 0xc0000008},
	specs.ArchMIPSEL64N32: {name: specs.ArchMIPSEL64N32, audit: 0xe0000008},
	specs.ArchPPC:         {name: specs.ArchPPC, audit: 0x00000014},
	specs.ArchPPC64:       {name: specs.ArchPPC64, audit: 0x80000015},
	specs.ArchPPC64LE:     {name: specs.ArchPPC64LE, audit: 0xc0000015},
	specs.ArchS390:        {name: specs.ArchS390, audit: 0x00000016},
	specs.ArchS390X:       {name: specs.ArchS390X, audit: 0x80000016},
	specs.ArchPARISC:      {name: specs.ArchPARISC, audit: 0x0000000f},
	specs.ArchPARISC64:    {name: specs.ArchPARISC64, audit: 0x8000000f},
	specs.ArchRISCV64:     {name: specs.ArchRISCV64, audit: 0xc00000f3},
	specs.ArchLOONGARCH64: {name: specs.ArchLOONGARCH64, audit: 0xc0000102},
	specs.ArchM68K:        {name: specs.ArchM68K, audit: 0x00000004},
	specs.ArchSH:          {name: specs.ArchSH, audit: 0x4000002a},
	specs.ArchSHEB:        {name: specs.ArchSHEB, audit: 0x0000002a},
}

// compat lists the ABIs a kernel of the key arch runs besides its own.
// Only these can reach a filter on that kernel: a foreign arch listed in a
// profile written for several hosts can never produce a syscall here, so
// it is dropped rather than refused.
var compat = map[specs.Arch][]specs.Arch{
	specs.ArchX86_64:  {specs.ArchX86, specs.ArchX32},
	specs.ArchAARCH64: {specs.ArchARM},
}

// nativeArch is the ABI of the running binary, which a filter always allows
// through the arch check, whatever the spec lists (as libseccomp does).
func nativeArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	}
	return "", fmt.Errorf("seccomp on %s: no syscall table for this architecture: %w", runtime.GOARCH, errdefs.ErrNotImplemented)
}

// abisFor returns the ABIs a filter for native must cover: native first,
// then each listed one the native kernel can run, in the spec's order; and
// the listed ones the kernel can run but berth has no table for.
func abisFor(native specs.Arch, listed []specs.Arch) (abis []*arch, dropped []specs.Arch, err error) {
	out := []*arch{arches[native]}
	seen := map[specs.Arch]bool{native: true}
	for _, name := range listed {
		a, ok := arches[name]
		if !ok {
			return nil, nil, fmt.Errorf("seccomp architecture %q: unknown (want one of the SCMP_ARCH_* names of the runtime spec): %w", name, errdefs.ErrInvalidArgument)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		runnable := false
		for _, c := range compat[native] {
			runnable = runnable || c == name
		}
		if !runnable {
			continue
		}
		if a.table == nil {
			// Fail closed: without numbers no rule can be placed, so the
			// ABI is treated as unlisted and its calls are killed.
			dropped = append(dropped, name)
			continue
		}
		out = append(out, a)
	}
	return out, dropped, nil
}
