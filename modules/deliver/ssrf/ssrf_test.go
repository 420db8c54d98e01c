package ssrf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestGuardRefusesInternalRangesAndAllowsPublic(t *testing.T) {
	g := New(nil)
	refused := []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "0.0.0.0",
		"::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.2.3", "::ffff:192.168.0.1",
		"224.0.0.1", "255.255.255.255",
	}
	for _, s := range refused {
		if err := g.Check(netip.MustParseAddr(s)); !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%s) = %v, want refused", s, err)
		}
	}
	allowed := []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"}
	for _, s := range allowed {
		if err := g.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", s, err)
		}
	}
}

func TestGuardAllowListOpensOnlyItsRanges(t *testing.T) {
	g := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1"} {
		if err := g.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1", "169.254.169.254", "::1"} {
		if err := g.Check(netip.MustParseAddr(s)); err == nil {
			t.Errorf("Check(%s) allowed, want refused", s)
		}
	}
}

func TestControlRefusesDialToLoopbackEvenByHostname(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := net.Dialer{Control: New(nil).Control}
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port} {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want refused", addr)
		}
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("dial %s: %v, want ErrRefused", addr, err)
		}
	}
	d.Control = New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}).Control
	c, err := d.DialContext(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("dial with allow-list: %v", err)
	}
	c.Close()
}

func TestGuardChecksTheIPv4AddressEmbeddedInIPv6Forms(t *testing.T) {
	g := New(nil)
	for _, c := range []struct {
		ip      string
		refused bool
	}{
		{"::127.0.0.1", true},        // IPv4-compatible loopback
		{"::169.254.169.254", true},  // IPv4-compatible metadata
		{"::10.0.0.1", true},         // IPv4-compatible RFC 1918
		{"::ffff:127.0.0.1", true},   // IPv4-mapped loopback
		{"::ffff:0:0", true},         // mapped 0.0.0.0
		{"::ffff:100.64.0.1", true},  // mapped CGNAT
		{"64:ff9b::127.0.0.1", true}, // NAT64 to loopback
		{"64:ff9b::169.254.169.254", true},
		{"64:ff9b::192.168.1.1", true},
		{"64:ff9b:1::1", true}, // local-use NAT64: no fixed embedding, refused whole
		{"::", true},
		{"::1", true},
		{"::8.8.8.8", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::8.8.8.8", false}, // DNS64 answer for a public host on an IPv6-only network
		{"64:ff9b::1.1.1.1", false},
	} {
		err := g.Check(netip.MustParseAddr(c.ip))
		if c.refused && !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%s) = %v, want refused", c.ip, err)
		}
		if !c.refused && err != nil {
			t.Errorf("Check(%s) = %v, want allowed", c.ip, err)
		}
	}
}

func TestGuardExactAllowanceOpensOneAddressAndPortOnly(t *testing.T) {
	g := New(nil, netip.MustParseAddrPort("127.0.0.1:9000"))
	for _, c := range []struct {
		ap      string
		refused bool
	}{
		{"127.0.0.1:9000", false},
		{"[::ffff:127.0.0.1]:9000", false},
		{"127.0.0.1:8545", true}, // the devnet's control API
		{"127.0.0.1:9090", true}, // metrics
		{"127.0.0.2:9000", true},
		{"[::1]:9000", true},
		{"10.0.0.1:9000", true},
	} {
		err := g.CheckAddrPort(netip.MustParseAddrPort(c.ap))
		if c.refused && !errors.Is(err, ErrRefused) {
			t.Errorf("CheckAddrPort(%s) = %v, want refused", c.ap, err)
		}
		if !c.refused && err != nil {
			t.Errorf("CheckAddrPort(%s) = %v, want allowed", c.ap, err)
		}
	}
	if err := g.Check(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrRefused) {
		t.Fatalf("Check without a port = %v, want refused", err)
	}
}
