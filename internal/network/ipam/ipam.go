package ipam

import (
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Pool hands out addresses of one subnet. It is not safe for concurrent use.
type Pool struct {
	Subnet  netip.Prefix
	Range   netip.Prefix // addresses are allocated from here; Subnet when not set
	Gateway netip.Addr

	used map[netip.Addr]string // address → owner
	next netip.Addr            // where the search for a free address starts
}

// NewPool checks subnet, ipRange and gateway (either may be the zero value)
// and returns a pool with the gateway reserved. Without a gateway the first
// host address of the subnet is the gateway, as docker does.
func NewPool(subnet, ipRange netip.Prefix, gateway netip.Addr) (*Pool, error) {
	if !subnet.IsValid() {
		return nil, fmt.Errorf("subnet: %w", errdefs.ErrInvalidArgument)
	}
	if subnet != subnet.Masked() {
		return nil, fmt.Errorf("subnet %s: host bits set (use %s): %w", subnet, subnet.Masked(), errdefs.ErrInvalidArgument)
	}
	bits := subnet.Addr().BitLen()
	if subnet.Bits() > bits-2 {
		return nil, fmt.Errorf("subnet %s: too small for a gateway and a container: %w", subnet, errdefs.ErrInvalidArgument)
	}
	if !ipRange.IsValid() {
		ipRange = subnet
	}
	if ipRange != ipRange.Masked() || ipRange.Addr().BitLen() != bits || ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) {
		return nil, fmt.Errorf("ip-range %s: not a prefix inside subnet %s: %w", ipRange, subnet, errdefs.ErrInvalidArgument)
	}
	if !gateway.IsValid() {
		gateway = subnet.Addr().Next()
	}
	if !subnet.Contains(gateway) || gateway == subnet.Addr() || (bits == 32 && gateway == lastAddr(subnet)) {
		return nil, fmt.Errorf("gateway %s: not a host address of subnet %s: %w", gateway, subnet, errdefs.ErrInvalidArgument)
	}
	p := &Pool{Subnet: subnet, Range: ipRange, Gateway: gateway, used: map[netip.Addr]string{}, next: ipRange.Addr()}
	p.used[gateway] = "gateway"
	return p, nil
}

// lastAddr is the highest address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// usable reports whether a may go to a container: inside the subnet, not
// the network address, and for IPv4 not the broadcast address.
func (p *Pool) usable(a netip.Addr) bool {
	if !p.Subnet.Contains(a) || a == p.Subnet.Addr() {
		return false
	}
	return !a.Is4() || a != lastAddr(p.Subnet)
}

// Allocate gives owner the address want, or when want is the zero value the
// next free address of the range. ErrConflict when want is taken,
// ErrUnavailable when the range is full.
func (p *Pool) Allocate(owner string, want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		want = want.Unmap()
		if !p.usable(want) {
			return netip.Addr{}, fmt.Errorf("address %s: not a host address of subnet %s: %w", want, p.Subnet, errdefs.ErrInvalidArgument)
		}
		if o, ok := p.used[want]; ok {
			return netip.Addr{}, fmt.Errorf("address %s: in use by %s: %w", want, o, errdefs.ErrConflict)
		}
		p.used[want] = owner
		return want, nil
	}
	// Walk the range from where the last search stopped, wrapping once, so
	// a just-released address is not handed out again at once (as docker).
	start := p.next
	a := start
	for {
		if p.usable(a) {
			if _, ok := p.used[a]; !ok {
				p.used[a] = owner
				p.next = a.Next()
				if !p.Range.Contains(p.next) {
					p.next = p.Range.Addr()
				}
				return a, nil
			}
		}
		a = a.Next()
		if !a.IsValid() || !p.Range.Contains(a) {
			a = p.Range.Addr()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("range %s: no free address: %w", p.Range, errdefs.ErrUnavailable)
		}
	}
}

// Release frees a; releasing a free address or the gateway does nothing.
func (p *Pool) Release(a netip.Addr) {
	if a != p.Gateway {
		delete(p.used, a.Unmap())
	}
}

// Owner returns who holds a.
func (p *Pool) Owner(a netip.Addr) (string, bool) {
	o, ok := p.used[a.Unmap()]
	return o, ok
}

// InUse is the number of allocated addresses, the gateway included.
func (p *Pool) InUse() int { return len(p.used) }

// DefaultPools are where subnets for networks created without --subnet come
// from, in order: /16s in 172.18-172.29 and then /20s in 192.168/16, as
// docker's default-address-pools.
func DefaultPools() []netip.Prefix {
	var out []netip.Prefix
	for i := 18; i <= 29; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// maxSplit bounds SplitPool: a /8 cut into /24s is 65536 candidates, as
// many as anyone has networks; more would only cost memory.
const maxSplit = 1 << 16

// SplitPool cuts base into subnets of size bits, in order: docker's
// default-address-pools entry {base, size}.
func SplitPool(base netip.Prefix, size int) ([]netip.Prefix, error) {
	base = base.Masked()
	if !base.IsValid() || !base.Addr().Is4() {
		return nil, fmt.Errorf("address pool %s: want an IPv4 CIDR: %w", base, errdefs.ErrInvalidArgument)
	}
	if size < base.Bits() || size > 30 {
		return nil, fmt.Errorf("address pool %s: size %d must be between %d and 30: %w", base, size, base.Bits(), errdefs.ErrInvalidArgument)
	}
	if size-base.Bits() > 16 {
		return nil, fmt.Errorf("address pool %s: size %d makes over %d subnets: %w", base, size, maxSplit, errdefs.ErrInvalidArgument)
	}
	n := 1 << (size - base.Bits())
	out := make([]netip.Prefix, 0, n)
	a := base.Addr().As4()
	start := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - size)
	for i := 0; i < n; i++ {
		v := start + uint32(i)*step
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), size))
	}
	return out, nil
}

// PickSubnet returns the first of candidates that overlaps none of taken.
func PickSubnet(candidates, taken []netip.Prefix) (netip.Prefix, error) {
next:
	for _, c := range candidates {
		for _, t := range taken {
			if c.Overlaps(t) {
				continue next
			}
		}
		return c, nil
	}
	return netip.Prefix{}, fmt.Errorf("pick subnet: all default pools overlap existing networks or routes: %w", errdefs.ErrUnavailable)
}

// MACFromIP derives a container's MAC from its IPv4 address as docker does:
// 02:42 (locally administered, unicast) then the four address bytes, so
// neighbours keep a stable mapping when an address is reused.
func MACFromIP(a netip.Addr) [6]byte {
	b := a.As4()
	return [6]byte{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
