package portmap

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Binding publishes ContainerPort/Proto on HostIP:HostPort. HostIP's zero
// value means every address (of each family the container has: the
// caller decides; Reserve takes it as 0.0.0.0), 0.0.0.0 every IPv4
// address and :: every IPv6 one, as in docker's -p; HostPort 0 means an
// ephemeral port; a HostPortEnd above HostPort means any free port of
// HostPort..HostPortEnd.
type Binding struct {
	HostIP        netip.Addr `json:",omitzero"`
	HostPort      uint16
	HostPortEnd   uint16 `json:",omitempty"`
	ContainerPort uint16
	Proto         string
}

// String is docker port's line: "80/tcp -> 0.0.0.0:8080".
func (b Binding) String() string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return fmt.Sprintf("%d/%s -> %s", b.ContainerPort, b.Proto, netip.AddrPortFrom(netip.MustParseAddr(ip), b.HostPort))
}

func invalid(spec, why string) error {
	return fmt.Errorf("port spec %q: %s: %w", spec, why, errdefs.ErrInvalidArgument)
}

// Parse reads one -p spec into its bindings (several for a range).
func Parse(spec string) ([]Binding, error) {
	rest, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, invalid(spec, "protocol must be tcp, udp or sctp")
	}
	var ipPart, hostPart, ctrPart string
	// An IPv6 host address is bracketed: [::1]:8080:80.
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return nil, invalid(spec, "unterminated [address]")
		}
		ipPart, rest = rest[1:end], rest[end+2:]
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return nil, invalid(spec, "want [ip]:hostPort:containerPort")
		}
		hostPart, ctrPart = parts[0], parts[1]
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrPart = parts[0]
		case 2:
			hostPart, ctrPart = parts[0], parts[1]
		case 3:
			ipPart, hostPart, ctrPart = parts[0], parts[1], parts[2]
		default:
			return nil, invalid(spec, "too many ':'")
		}
	}
	var hostIP netip.Addr
	if ipPart != "" {
		a, err := netip.ParseAddr(ipPart)
		if err != nil {
			return nil, invalid(spec, "bad host IP")
		}
		hostIP = a.Unmap()
	}
	cLo, cHi, err := portRange(ctrPart)
	if err != nil || cLo == 0 {
		return nil, invalid(spec, "bad container port")
	}
	var hLo, hHi uint16
	if hostPart != "" {
		if hLo, hHi, err = portRange(hostPart); err != nil {
			return nil, invalid(spec, "bad host port")
		}
	}
	n := int(cHi-cLo) + 1
	var out []Binding
	switch {
	case hostPart == "":
		for i := range n {
			out = append(out, Binding{HostIP: hostIP, ContainerPort: cLo + uint16(i), Proto: proto})
		}
	case n == 1 && hHi > hLo:
		out = append(out, Binding{HostIP: hostIP, HostPort: hLo, HostPortEnd: hHi, ContainerPort: cLo, Proto: proto})
	case int(hHi-hLo)+1 == n:
		for i := range n {
			out = append(out, Binding{HostIP: hostIP, HostPort: hLo + uint16(i), ContainerPort: cLo + uint16(i), Proto: proto})
		}
	default:
		return nil, invalid(spec, "host and container port ranges differ in length")
	}
	return out, nil
}

func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil {
			return 0, 0, err
		}
		if h < l {
			return 0, 0, errors.New("range end below start")
		}
	}
	return uint16(l), uint16(h), nil
}

// Reservation holds the sockets that keep host ports for one container,
// and the proxies serving some of them (Proxy). It is safe for
// concurrent use: mu guards fds and proxies.
type Reservation struct {
	Bindings []Binding // as reserved: HostPort is the real port

	mu      sync.Mutex
	fds     []int
	proxies []*proxy
}

// Reserve binds a socket for each binding, all or nothing. A port in use
// is ErrConflict with docker's wording.
func Reserve(bs []Binding) (r *Reservation, err error) {
	r = &Reservation{}
	defer func() {
		if err != nil {
			r.Close()
			r = nil
		}
	}()
	for _, b := range bs {
		got, fd, err := reserveOne(b)
		if err != nil {
			return nil, err
		}
		r.fds = append(r.fds, fd)
		r.Bindings = append(r.Bindings, got)
	}
	return r, nil
}

func reserveOne(b Binding) (Binding, int, error) {
	if b.HostPortEnd > b.HostPort {
		var last error
		for p := int(b.HostPort); p <= int(b.HostPortEnd); p++ {
			c := b
			c.HostPort, c.HostPortEnd = uint16(p), 0
			got, fd, err := reserveOne(c)
			if err == nil {
				return got, fd, nil
			}
			last = err
		}
		return b, -1, fmt.Errorf("no free host port in %d-%d: %w", b.HostPort, b.HostPortEnd, last)
	}
	typ, proto := unix.SOCK_STREAM, unix.IPPROTO_TCP
	switch b.Proto {
	case "udp":
		typ, proto = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	case "sctp":
		typ, proto = unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP
	}
	ip := b.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(b.HostPort), Addr: ip.As16()}
	if ip.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(b.HostPort), Addr: ip.As4()}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return b, -1, fmt.Errorf("socket for host port %d/%s: %w", b.HostPort, b.Proto, err)
	}
	if family == unix.AF_INET6 {
		// [::]:port is IPv6 only, as docker's: without it the socket
		// would take the IPv4 port too (net.ipv6.bindv6only is 0 by
		// default), which the 0.0.0.0 binding beside it holds.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return b, -1, fmt.Errorf("host port %d/%s: IPV6_V6ONLY: %w", b.HostPort, b.Proto, err)
		}
		// [::] and [::1] TCP ports become the proxy's listeners, whose
		// connections leave TIME_WAIT sockets on the port: a daemon that
		// restarts must bind it again all the same. A listening socket
		// still keeps others off the port (Linux refuses a bind beside a
		// listener whatever SO_REUSEADDR says).
		if typ == unix.SOCK_STREAM && (ip.IsLoopback() || ip.IsUnspecified()) {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				unix.Close(fd)
				return b, -1, fmt.Errorf("host port %d/%s: SO_REUSEADDR: %w", b.HostPort, b.Proto, err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		ap := netip.AddrPortFrom(ip, b.HostPort)
		if errors.Is(err, unix.EADDRINUSE) {
			return b, -1, fmt.Errorf("Bind for %s failed: port is already allocated: %w", ap, errdefs.ErrConflict)
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return b, -1, fmt.Errorf("bind %s: host IP is not an address of this host: %w", ap, errdefs.ErrInvalidArgument)
		}
		return b, -1, fmt.Errorf("bind %s: %w", ap, err)
	}
	if b.HostPort == 0 {
		got, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return b, -1, fmt.Errorf("ephemeral port: %w", err)
		}
		switch s := got.(type) {
		case *unix.SockaddrInet4:
			b.HostPort = uint16(s.Port)
		case *unix.SockaddrInet6:
			b.HostPort = uint16(s.Port)
		}
	}
	b.HostPortEnd = 0
	return b, fd, nil
}

// Close stops the proxies and releases the ports. It is safe on nil and
// twice.
func (r *Reservation) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.proxies {
		p.close()
	}
	r.proxies = nil
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
