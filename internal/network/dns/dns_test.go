package dns_test

import (
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/net/dns/dnsmessage"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// fakeUpstream answers every A question with 192.0.2.99 on 127.0.0.1.
func fakeUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			m.Response = true
			q := m.Questions[0]
			if q.Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
					Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 99}}}}
			}
			b, _ := m.Pack()
			_, _ = c.WriteToUDPAddrPort(b, from)
		}
	}()
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

func TestServerAnswersAndForwards(t *testing.T) {
	testutil.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := netns.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Remove(path) })
	lookup := func(name string) ([]netip.Addr, bool) {
		if name == "web" {
			return []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::3")}, true
		}
		return nil, false
	}
	reverse := func(a netip.Addr) (string, bool) {
		if a == netip.MustParseAddr("10.1.2.3") || a == netip.MustParseAddr("fd00::3") {
			return "web.net", true
		}
		return "", false
	}
	s, err := dns.Start(t.Context(), path, dns.Names{Lookup: lookup, Reverse: reverse}, []netip.AddrPort{fakeUpstream(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// a server of the container's own on port 53 of every address does not
	// clash with ours (ours listens on an ephemeral port behind a DNAT)
	own := exec.Command("nsenter", "--net="+path, "busybox", "nc", "-lu", "-p", "53")
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Process.Kill(); _ = own.Wait() })
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"web", "127.0.0.11"}, "10.1.2.3"},
		{[]string{"-type=AAAA", "web", "127.0.0.11"}, "fd00::3"},
		{[]string{"elsewhere.example", "127.0.0.11"}, "192.0.2.99"},
		{[]string{"10.1.2.3", "127.0.0.11"}, "web.net"},
		{[]string{"fd00::3", "127.0.0.11"}, "web.net"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"--net=" + path, "busybox", "nslookup"}, tt.args...)
			out, err := exec.Command("nsenter", args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
	// and over TCP: busybox has no TCP resolver, so speak it by hand
	var conn net.Conn
	if err := netns.Do(path, func() (err error) { conn, err = net.Dial("tcp4", "127.0.0.11:53"); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("web."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, _ := q.Pack()
	if _, err := conn.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		t.Fatalf("tcp read: %v", err)
	}
	resp := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatalf("tcp read: %v", err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil || len(m.Answers) != 1 || m.Header.ID != 7 {
		t.Fatalf("tcp answer %+v %v", m, err)
	}
}

func TestUpstream(t *testing.T) {
	got := dns.Upstream([]byte("# c\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nsearch x\nnameserver bad\n"))
	if len(got) != 2 || got[0].String() != "10.0.0.1:53" {
		t.Fatalf("%v", got)
	}
}
