package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestNewPoolValidates(t *testing.T) {
	mp := netip.MustParsePrefix
	ma := netip.MustParseAddr
	tests := []struct {
		name    string
		subnet  netip.Prefix
		ipRange netip.Prefix
		gw      netip.Addr
		wantGW  netip.Addr
		wantErr bool
	}{
		{name: "default gateway", subnet: mp("10.1.0.0/24"), wantGW: ma("10.1.0.1")},
		{name: "given gateway", subnet: mp("10.1.0.0/24"), gw: ma("10.1.0.254"), wantGW: ma("10.1.0.254")},
		{name: "v6", subnet: mp("fd00:1::/64"), wantGW: ma("fd00:1::1")},
		{name: "host bits", subnet: mp("10.1.0.5/24"), wantErr: true},
		{name: "too small", subnet: mp("10.1.0.0/31"), wantErr: true},
		{name: "gateway outside", subnet: mp("10.1.0.0/24"), gw: ma("10.2.0.1"), wantErr: true},
		{name: "gateway broadcast", subnet: mp("10.1.0.0/24"), gw: ma("10.1.0.255"), wantErr: true},
		{name: "gateway network", subnet: mp("10.1.0.0/24"), gw: ma("10.1.0.0"), wantErr: true},
		{name: "range outside", subnet: mp("10.1.0.0/24"), ipRange: mp("10.2.0.0/25"), wantErr: true},
		{name: "range larger", subnet: mp("10.1.0.0/24"), ipRange: mp("10.1.0.0/23"), wantErr: true},
		{name: "no subnet", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPool(tt.subnet, tt.ipRange, tt.gw)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Gateway != tt.wantGW {
				t.Fatalf("gateway %s, want %s", p.Gateway, tt.wantGW)
			}
		})
	}
}

func TestAllocateSkipsReservedAndWraps(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.1.0.0/29"), netip.Prefix{}, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 5 {
		a, err := p.Allocate("c", netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := p.Allocate("c", netip.Addr{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("full pool: err = %v", err)
	}
	p.Release(netip.MustParseAddr("10.1.0.3"))
	if a, err := p.Allocate("d", netip.Addr{}); err != nil || a.String() != "10.1.0.3" {
		t.Fatalf("after release got %v %v", a, err)
	}
}

func TestAllocateFixed(t *testing.T) {
	p, _ := NewPool(netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.1.0.128/25"), netip.Addr{})
	if _, err := p.Allocate("a", netip.MustParseAddr("10.1.0.9")); err != nil {
		t.Fatalf("fixed address outside the range but inside the subnet: %v", err)
	}
	if _, err := p.Allocate("b", netip.MustParseAddr("10.1.0.9")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("taken: %v", err)
	}
	if _, err := p.Allocate("b", netip.MustParseAddr("10.1.0.1")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("gateway: %v", err)
	}
	if _, err := p.Allocate("b", netip.MustParseAddr("10.9.0.1")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("outside: %v", err)
	}
	a, _ := p.Allocate("c", netip.Addr{})
	if a.String() != "10.1.0.128" && a.String() != "10.1.0.129" {
		t.Fatalf("dynamic address %s outside ip-range", a)
	}
}

func TestPickSubnet(t *testing.T) {
	taken := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("172.19.5.0/24")}
	got, err := PickSubnet(DefaultPools(), taken)
	if err != nil || got.String() != "172.20.0.0/16" {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestMACFromIP(t *testing.T) {
	m := MACFromIP(netip.MustParseAddr("172.17.0.2"))
	if m != [6]byte{2, 0x42, 172, 17, 0, 2} {
		t.Fatalf("mac %x", m)
	}
}
