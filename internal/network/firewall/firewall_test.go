package firewall_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestApplyWritesRulesAndDeleteRemovesTable(t *testing.T) {
	testutil.RequireRoot(t)
	const table = "berth_fwtest"
	t.Cleanup(func() {
		if err := firewall.Delete(table); err != nil {
			t.Error(err)
		}
	})
	rs := firewall.Ruleset{
		Bridges: []firewall.Bridge{
			{Name: "bt-a", Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.1.0/24"), netip.MustParsePrefix("fd77:1::/64")}},
			{Name: "bt-b", Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")}, Internal: true, NoICC: true, Ports: []string{"vbtest1"}},
		},
		Ports: []firewall.Port{
			{Proto: "tcp", HostPort: 8080, IP: netip.MustParseAddr("10.77.1.2"), Port: 80, Bridge: "bt-a"},
			{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, IP: netip.MustParseAddr("10.77.1.2"), Port: 53, Bridge: "bt-a"},
			{Proto: "tcp", HostPort: 8080, IP: netip.MustParseAddr("fd77:1::2"), Port: 80, Bridge: "bt-a"},
		},
		IsolateForwarding4: true,
		IsolateForwarding6: true,
	}
	for range 2 { // twice: Apply replaces, it does not append
		if err := firewall.Apply(table, rs); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		`ip saddr 10.77.1.0/24 oifname != "bt-a" masquerade`,
		`ip6 saddr fd77:1::/64 oifname != "bt-a" masquerade`,
		`iifname "bt-a" oifname "bt-b" drop`,
		`iifname "bt-b" oifname != "bt-b" drop`,
		`fib daddr type local tcp dport 8080 dnat ip to 10.77.1.2:80`,
		`ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.77.1.2:53`,
		`fib daddr type local ip6 daddr != ::1 tcp dport 8080 dnat ip6 to [fd77:1::2]:80`,
		`meta nfproto ipv4 iifname != "bt-a" oifname != "bt-a" iifname != "bt-b" oifname != "bt-b" drop`,
		`meta nfproto ipv6 iifname != "bt-a" oifname != "bt-a" iifname != "bt-b" oifname != "bt-b" drop`,
		`oifname "bt-a" ip saddr 127.0.0.0/8 masquerade`,
		`iifname "bt-a" ip daddr 127.0.0.0/8 ct state ! established,related drop`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	if b, err := exec.Command("nft", "list", "table", "bridge", table).CombinedOutput(); err != nil ||
		!strings.Contains(string(b), `iifname "vbtest1" meta protocol ip drop`) || !strings.Contains(string(b), `iifname "vbtest1" meta protocol ip6 drop`) {
		t.Errorf("bridge table for icc off: %v\n%s", err, b)
	}
	if strings.Count(s, "dport 8080") != 4 {
		t.Errorf("want the 8080 DNAT in prerouting and output once each:\n%s", s)
	}
	if t.Failed() {
		t.Log(s)
	}
	// without a bridge of icc off, no bridge table
	if err := firewall.Apply(table, firewall.Ruleset{Bridges: rs.Bridges[:1]}); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("nft", "list", "table", "bridge", table).CombinedOutput(); err == nil {
		t.Errorf("bridge table left:\n%s", b)
	}
	if err := firewall.Apply(table, firewall.Ruleset{Ports: []firewall.Port{{Proto: "icmp", IP: netip.MustParseAddr("10.0.0.1")}}}); err == nil {
		t.Error("bad protocol accepted")
	}
	if err := firewall.Apply(table, firewall.Ruleset{Ports: []firewall.Port{{Proto: "tcp", HostIP: netip.MustParseAddr("::1"), IP: netip.MustParseAddr("10.0.0.1")}}}); err == nil {
		t.Error("mixed families accepted")
	}
}
