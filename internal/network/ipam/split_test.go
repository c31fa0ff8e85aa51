package ipam_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/ipam"
)

func TestSplitPool(t *testing.T) {
	tests := []struct {
		base        string
		size        int
		n           int
		first, last string
		bad         bool
	}{
		{"10.10.0.0/16", 24, 256, "10.10.0.0/24", "10.10.255.0/24", false},
		{"10.10.7.9/16", 16, 1, "10.10.0.0/16", "10.10.0.0/16", false},
		{"172.16.0.0/12", 20, 256, "172.16.0.0/20", "172.31.240.0/20", false},
		{"10.0.0.0/8", 24, 65536, "10.0.0.0/24", "10.255.255.0/24", false},
		{"10.0.0.0/8", 25, 0, "", "", true},
		{"10.10.0.0/16", 8, 0, "", "", true},
		{"10.10.0.0/16", 31, 0, "", "", true},
		{"fd00::/48", 64, 0, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			got, err := ipam.SplitPool(netip.MustParsePrefix(tc.base), tc.size)
			if tc.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("SplitPool(%s, %d) = %d subnets, %v; want an invalid-argument error", tc.base, tc.size, len(got), err)
				}
				return
			}
			if err != nil || len(got) != tc.n || got[0].String() != tc.first || got[len(got)-1].String() != tc.last {
				t.Fatalf("SplitPool(%s, %d): %d subnets %v..%v, %v", tc.base, tc.size, len(got), got[0], got[len(got)-1], err)
			}
		})
	}
}
