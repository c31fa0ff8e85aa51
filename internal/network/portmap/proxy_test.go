package portmap

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// needLoopback6 skips where the host has no ::1 (IPv6 disabled).
func needLoopback6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
}

// TestProxyTCPAndUDP serves a reserved [::1] port through the proxy to
// servers on 127.0.0.1 (a container's IPv4 address, in real use): a TCP
// request answered after the client's half close, and UDP datagrams of
// two clients each answered to the right one. Close stops it all and
// frees the port.
func TestProxyTCPAndUDP(t *testing.T) {
	needLoopback6(t)
	lo6 := netip.IPv6Loopback()
	// TCP: an upper-casing server that answers after EOF
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				_, _ = c.Write(append([]byte("got "), b...))
			}()
		}
	}()
	// UDP: an echo server
	ul, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()

	r, err := Reserve([]Binding{{HostIP: lo6, ContainerPort: 80, Proto: "tcp"}, {HostIP: lo6, ContainerPort: 53, Proto: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Proxy(0, tl.Addr().(*net.TCPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if err := r.Proxy(1, ul.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	tcpAddr := netip.AddrPortFrom(lo6, r.Bindings[0].HostPort).String()
	c, err := net.DialTimeout("tcp6", tcpAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "got hello" {
		t.Fatalf("through the TCP proxy: %q %v", got, err)
	}

	udpAddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo6, r.Bindings[1].HostPort))
	for _, msg := range []string{"one", "two"} {
		u, err := net.DialUDP("udp6", nil, udpAddr)
		if err != nil {
			t.Fatal(err)
		}
		_ = u.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := u.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := u.Read(buf)
		u.Close()
		if err != nil || string(buf[:n]) != "echo "+msg {
			t.Fatalf("through the UDP proxy: %q %v", buf[:n], err)
		}
	}

	r.Close()
	if c, err := net.DialTimeout("tcp6", tcpAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the proxy still accepts after Close")
	}
	l, err := net.Listen("tcp6", tcpAddr)
	if err != nil {
		t.Fatalf("port not released after Close: %v", err)
	}
	l.Close()
}

func TestProxyRefusals(t *testing.T) {
	needLoopback6(t)
	r, err := Reserve([]Binding{{HostIP: netip.IPv6Loopback(), ContainerPort: 80, Proto: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Proxy(1, netip.MustParseAddrPort("127.0.0.1:80")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("proxy of a binding that is not there: %v", err)
	}
}

// TestReserveDualStack: [::]:port beside 0.0.0.0:port of the same
// number (the IPv6 socket is IPv6 only), and Add keeps all or nothing.
func TestReserveDualStack(t *testing.T) {
	needLoopback6(t)
	r, err := Reserve([]Binding{{ContainerPort: 80, Proto: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	port := r.Bindings[0].HostPort
	if err := r.Add([]Binding{{HostIP: netip.IPv6Unspecified(), HostPort: port, ContainerPort: 80, Proto: "tcp"}}); err != nil {
		t.Fatalf("[::]:%d beside 0.0.0.0:%d: %v", port, port, err)
	}
	if len(r.Bindings) != 2 || r.Bindings[1].HostIP != netip.IPv6Unspecified() {
		t.Fatalf("bindings %+v", r.Bindings)
	}
	// once [::] is the proxy's listener, nothing else binds the port
	// (SO_REUSEADDR, which it has, yields to a listener)
	if err := r.Proxy(1, netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
		t.Fatal(err)
	}
	if err := r.Add([]Binding{{HostIP: netip.IPv6Loopback(), HostPort: port, ContainerPort: 81, Proto: "tcp"}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("[::1] on a port the [::] proxy listens on: %v", err)
	}
	if len(r.Bindings) != 2 {
		t.Fatalf("a failed Add changed the bindings: %+v", r.Bindings)
	}
}
