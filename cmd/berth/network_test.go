package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestIPAMConfigPairsGatewaysAndRanges(t *testing.T) {
	tests := []struct {
		name                      string
		subnets, gateways, ranges []string
		want                      string // subnet/gateway/range per config, or the error
	}{
		{"none", nil, nil, nil, ""},
		{"subnet masked", []string{"10.1.2.3/24"}, nil, nil, "10.1.2.0/24 invalid IP invalid Prefix;"},
		{"dual stack", []string{"10.1.0.0/16", "fd00::/64"}, []string{"fd00::1", "10.1.0.254"}, []string{"10.1.128.0/17"},
			"10.1.0.0/16 10.1.0.254 10.1.128.0/17;fd00::/64 fd00::1 invalid Prefix;"},
		{"gateway outside", []string{"10.1.0.0/16"}, []string{"10.2.0.1"}, nil, "no matching subnet for gateway 10.2.0.1"},
		{"two gateways", []string{"10.1.0.0/16"}, []string{"10.1.0.1", "10.1.0.2"}, nil, "cannot configure multiple gateways"},
		{"range without subnet", nil, nil, []string{"10.1.0.0/24"}, "no matching subnet for range"},
		{"bad subnet", []string{"10.1.0.0"}, nil, nil, "invalid subnet 10.1.0.0"},
		{"bad gateway", []string{"10.1.0.0/16"}, []string{"x"}, nil, "invalid gateway x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ipamConfig(tc.subnets, tc.gateways, tc.ranges)
			got := ""
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !localErr(err) {
					t.Errorf("error %v is not a local usage error", err)
				}
				got = err.Error()
			}
			for _, c := range cfg {
				got += c.Subnet.String() + " " + c.Gateway.String() + " " + c.IPRange.String() + ";"
			}
			if len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAddressPools(t *testing.T) {
	tests := []struct {
		specs []string
		n     int
		first string
		err   string
	}{
		{nil, 0, "", ""},
		{[]string{"base=10.10.0.0/16,size=24"}, 256, "10.10.0.0/24", ""},
		{[]string{"size=20, base=172.40.0.0/16", "base=10.1.0.0/16,size=16"}, 17, "172.40.0.0/20", ""},
		{[]string{"base=10.10.0.0/16"}, 0, "", "want base=CIDR,size=N"},
		{[]string{"base=10.10.0.0/16,size=x"}, 0, "", "invalid syntax"},
		{[]string{"base=10.10.0.0/16,size=24,mode=x"}, 0, "", `unknown key "mode"`},
		{[]string{"base=10.10.0.0/16,size=8"}, 0, "", "size 8 must be between 16 and 30"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.specs, " "), func(t *testing.T) {
			got, err := addressPools(tc.specs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.n || (tc.n > 0 && got[0].String() != tc.first) {
				t.Fatalf("%d subnets (%v), %v; want %d from %s", len(got), got, err, tc.n, tc.first)
			}
		})
	}
}
