package dns

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/netns"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// Address is where containers reach the server, as docker's.
var Address = netip.MustParseAddr("127.0.0.11")

// Names is what the server knows, as the asking container sees it.
// Questions about anything else are forwarded upstream.
type Names struct {
	// Lookup returns the addresses of name (lower case, no trailing dot);
	// ok is false for names it does not know.
	Lookup func(name string) (addrs []netip.Addr, ok bool)
	// Reverse returns the name of an address, for PTR questions; nil, or
	// ok false, forwards them.
	Reverse func(a netip.Addr) (name string, ok bool)
}

// Server answers for one container. Close stops it and closes its sockets.
type Server struct {
	names    Names
	upstream []netip.AddrPort
	udp      *net.UDPConn
	tcp      *net.TCPListener
	wg       sync.WaitGroup
	ctx      context.Context
}

// table is the name of the nftables table in the container's namespace.
const table = "berth_dns"

// Start listens inside the namespace at netnsPath and serves until Close.
func Start(ctx context.Context, netnsPath string, names Names, upstream []netip.AddrPort) (*Server, error) {
	s := &Server{names: names, upstream: upstream, ctx: context.WithoutCancel(ctx)}
	err := netns.Do(netnsPath, func() error {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: Address.AsSlice()})
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", Address, err)
		}
		t, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: Address.AsSlice()})
		if err != nil {
			u.Close()
			return fmt.Errorf("listen tcp %s: %w", Address, err)
		}
		s.udp, s.tcp = u, t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dns server in %s: %w", netnsPath, err)
	}
	if err := redirect(netnsPath, uint16(s.udp.LocalAddr().(*net.UDPAddr).Port), uint16(s.tcp.Addr().(*net.TCPAddr).Port)); err != nil {
		s.udp.Close()
		s.tcp.Close()
		return nil, fmt.Errorf("dns server in %s: %w", netnsPath, err)
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// redirect writes the DNAT from 127.0.0.11:53 to the listeners' ports into
// the namespace's own nftables ruleset (hook output: the queries are made
// locally inside the container).
func redirect(netnsPath string, udpPort, tcpPort uint16) error {
	f, err := os.Open(netnsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("nftables in container netns: %w", err)
	}
	t := c.AddTable(&nftables.Table{Name: table, Family: nftables.TableFamilyIPv4})
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	dst := Address.As4()
	for _, r := range []struct {
		proto byte
		port  uint16
	}{{unix.IPPROTO_UDP, udpPort}, {unix.IPPROTO_TCP, tcpPort}} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dst[:]},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 53}},
			&expr.Immediate{Register: 1, Data: dst[:]},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("dns redirect rules: %w", err)
	}
	return nil
}

// Close stops serving and closes the sockets (which lets the container's
// namespace go once nothing else holds it).
func (s *Server) Close() {
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := s.answer(q, "udp"); resp != nil {
				_, _ = s.udp.WriteToUDPAddrPort(resp, from)
			}
		}()
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				q, err := readFramed(r)
				if err != nil {
					return
				}
				resp := s.answer(q, "tcp")
				if resp == nil {
					return
				}
				// one write: length and message in one segment
				if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)); err != nil {
					return
				}
			}
		}()
	}
}

func readFramed(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

// answer builds the reply to one query: from Lookup when it knows the
// name, else from upstream; nil drops the query.
func (s *Server) answer(q []byte, transport string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return reply(h, qs, dnsmessage.RCodeFormatError, nil)
	}
	question := qs[0]
	name := strings.TrimSuffix(question.Name.String(), ".")
	if question.Type == dnsmessage.TypePTR && s.names.Reverse != nil {
		if a, ok := arpaAddr(strings.ToLower(name)); ok {
			if host, ok := s.names.Reverse(a); ok {
				n, err := dnsmessage.NewName(host + ".")
				if err == nil {
					return reply(h, qs, dnsmessage.RCodeSuccess, []dnsmessage.Resource{{
						Header: dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET, TTL: 600},
						Body:   &dnsmessage.PTRResource{PTR: n}}})
				}
			}
		}
	}
	if addrs, ok := s.names.Lookup(strings.ToLower(name)); ok && question.Class == dnsmessage.ClassINET {
		var rs []dnsmessage.Resource
		for _, a := range addrs {
			hdr := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 600}
			switch {
			case a.Is4() && question.Type == dnsmessage.TypeA:
				hdr.Type = dnsmessage.TypeA
				rs = append(rs, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: a.As4()}})
			case a.Is6() && question.Type == dnsmessage.TypeAAAA:
				hdr.Type = dnsmessage.TypeAAAA
				rs = append(rs, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
			}
		}
		return reply(h, qs, dnsmessage.RCodeSuccess, rs)
	}
	resp, err := s.forward(q, transport)
	if err != nil {
		log.From(s.ctx).Debug("dns forward", "name", name, log.KeyErr, err)
		return reply(h, qs, dnsmessage.RCodeServerFailure, nil)
	}
	return resp
}

func reply(h dnsmessage.Header, qs []dnsmessage.Question, rc dnsmessage.RCode, answers []dnsmessage.Resource) []byte {
	m := dnsmessage.Message{
		Header: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: rc == dnsmessage.RCodeSuccess,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rc},
		Questions: qs,
		Answers:   answers,
	}
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// forward sends q to each upstream in turn until one answers.
func (s *Server) forward(q []byte, transport string) ([]byte, error) {
	if len(s.upstream) == 0 {
		return nil, errors.New("no upstream resolvers")
	}
	var last error
	for _, up := range s.upstream {
		c, err := net.DialTimeout(transport, up.String(), 2*time.Second)
		if err != nil {
			last = err
			continue
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		var resp []byte
		if transport == "tcp" {
			_, err = c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...))
			if err == nil {
				resp, err = readFramed(c)
			}
		} else {
			_, err = c.Write(q)
			if err == nil {
				buf := make([]byte, 65535)
				var n int
				n, err = c.Read(buf)
				resp = buf[:n]
			}
		}
		c.Close()
		if err == nil {
			return resp, nil
		}
		last = err
	}
	return nil, last
}

// Upstream reads the nameservers of a resolv.conf as address:53.
func Upstream(resolvConf []byte) []netip.AddrPort {
	var out []netip.AddrPort
	for line := range strings.Lines(string(resolvConf)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
	}
	return out
}

// arpaAddr reads the address of a reverse name: 4.3.2.1.in-addr.arpa, or
// 32 nibbles in reverse before ip6.arpa.
func arpaAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
		return a, err == nil
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		nib := strings.Split(rest, ".")
		if len(nib) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, x := range nib {
			v, err := strconv.ParseUint(x, 16, 4)
			if err != nil || len(x) != 1 {
				return netip.Addr{}, false
			}
			pos := 31 - i // nibble index from the front of the address
			b[pos/2] |= byte(v) << (4 * (1 - pos%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
