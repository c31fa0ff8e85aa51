package portmap

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParse(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		spec    string
		want    []Binding
		wantErr bool
	}{
		{spec: "80", want: []Binding{{ContainerPort: 80, Proto: "tcp"}}},
		{spec: "8080:80", want: []Binding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "8080:80/udp", want: []Binding{{HostPort: 8080, ContainerPort: 80, Proto: "udp"}}},
		{spec: "127.0.0.1:8080:80", want: []Binding{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "127.0.0.1::80", want: []Binding{{HostIP: lo, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "0.0.0.0:8080:80", want: []Binding{{HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "[::]:8080:80", want: []Binding{{HostIP: netip.IPv6Unspecified(), HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "[::1]:8080:80", want: []Binding{{HostIP: netip.IPv6Loopback(), HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "8000-8001:80-81", want: []Binding{{HostPort: 8000, ContainerPort: 80, Proto: "tcp"}, {HostPort: 8001, ContainerPort: 81, Proto: "tcp"}}},
		{spec: "8000-8010:80", want: []Binding{{HostPort: 8000, HostPortEnd: 8010, ContainerPort: 80, Proto: "tcp"}}},
		{spec: "80-81", want: []Binding{{ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 81, Proto: "tcp"}}},
		{spec: "8000-8002:80-81", wantErr: true},
		{spec: "80/icmp", wantErr: true},
		{spec: "x:80", wantErr: true},
		{spec: "1.2.3:80:80", wantErr: true},
		{spec: "0", wantErr: true},
		{spec: "70000", wantErr: true},
		{spec: "1:2:3:4", wantErr: true},
		{spec: "81-80", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReservePortInUseIsAllOrNothing(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	lo := netip.MustParseAddr("127.0.0.1")
	_, err = Reserve([]Binding{
		{HostIP: lo, ContainerPort: 80, Proto: "tcp"},
		{HostIP: lo, HostPort: busy, ContainerPort: 81, Proto: "tcp"},
	})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("err = %v, want conflict", err)
	}
	r, err := Reserve([]Binding{{HostIP: lo, ContainerPort: 80, Proto: "tcp"}, {HostIP: lo, ContainerPort: 53, Proto: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, b := range r.Bindings {
		if b.HostPort == 0 {
			t.Fatalf("no ephemeral port: %+v", b)
		}
	}
	// the reserved TCP port is refused to others
	if l2, err := net.Listen("tcp4", netip.AddrPortFrom(lo, r.Bindings[0].HostPort).String()); err == nil {
		l2.Close()
		t.Fatal("reserved port could be bound again")
	}
	r.Close()
	if l2, err := net.Listen("tcp4", netip.AddrPortFrom(lo, r.Bindings[0].HostPort).String()); err != nil {
		t.Fatalf("port not released: %v", err)
	} else {
		l2.Close()
	}
}

func TestBindingString(t *testing.T) {
	for _, tt := range []struct {
		b    Binding
		want string
	}{
		{Binding{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, "80/tcp -> 0.0.0.0:8080"},
		{Binding{HostIP: netip.MustParseAddr("::1"), HostPort: 53, ContainerPort: 53, Proto: "udp"}, "53/udp -> [::1]:53"},
	} {
		if got := tt.b.String(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

func TestReserveRangeSkipsBusyPorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	r, err := Reserve([]Binding{{HostIP: lo, HostPort: busy, HostPortEnd: busy + 20, ContainerPort: 80, Proto: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Bindings[0]; got.HostPort <= busy || got.HostPort > busy+20 || got.HostPortEnd != 0 {
		t.Fatalf("range pick %+v (busy %d)", got, busy)
	}
}
