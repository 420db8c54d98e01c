// Package ssrf refuses webhook connections to addresses inside the
// deployment: loopback, private (RFC 1918, IPv6 ULA), link-local (incl. the
// cloud metadata address 169.254.169.254), CGNAT, unspecified, multicast and
// the IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:0:0/96,
// IPv4-compatible ::/96, NAT64 64:ff9b::/96), whose embedded address is
// checked like the IPv4 address itself. The check runs in net.Dialer.Control, on the
// IP address actually being dialed, so a hostname that resolves differently
// at check time and at dial time (DNS rebinding) cannot slip through, and
// every redirect hop is checked the same way.
package ssrf

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrRefused wraps every refusal so callers can classify it.
var ErrRefused = errors.New("address refused by SSRF guard")

// blocked lists the ranges refused unless allowed.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("2002::/16"),      // 6to4 (embeds IPv4)
	netip.MustParsePrefix("2001::/32"),      // Teredo (embeds IPv4)
}

// embedsIPv4 are the IPv6 ranges whose last 32 bits are an IPv4 address
// that the connection (or a translator on the way) ends up at.
var embedsIPv4 = []netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"), // IPv4-mapped
	netip.MustParsePrefix("::/96"),         // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 well-known prefix
}

// Guard decides which addresses a webhook may connect to.
type Guard struct {
	allow []netip.Prefix
	exact []netip.AddrPort
}

// New returns a guard that refuses internal ranges except those in allow
// and the single address-and-port pairs in exact (the demo receiver on
// 127.0.0.1:9000 without opening the rest of the host).
func New(allow []netip.Prefix, exact ...netip.AddrPort) *Guard {
	return &Guard{allow: allow, exact: exact}
}

// embedded returns the IPv4 address an IPv6 address carries (mapped,
// compatible or NAT64), else ip itself.
func embedded(ip netip.Addr) netip.Addr {
	if !ip.Is6() {
		return ip
	}
	for _, p := range embedsIPv4 {
		if p.Contains(ip) {
			b := ip.As16()
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		}
	}
	return ip
}

// Check returns nil when ip may be dialed (on any port).
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrRefused)
	}
	ip = ip.WithZone("")
	v4 := embedded(ip)
	// The allow-list is consulted on the address as written and on the
	// IPv4 address it carries, so 127.0.0.0/8 also allows ::ffff:127.0.0.1.
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(v4) {
			return nil
		}
	}
	for _, p := range blocked {
		if p.Contains(v4) {
			if v4 != ip {
				return fmt.Errorf("%w: %s carries %s, which is in %s", ErrRefused, ip, v4, p)
			}
			return fmt.Errorf("%w: %s is in %s", ErrRefused, ip, p)
		}
	}
	return nil
}

// CheckAddrPort is Check plus the exact address-and-port allowances.
func (g *Guard) CheckAddrPort(ap netip.AddrPort) error {
	ip := ap.Addr().WithZone("")
	for _, e := range g.exact {
		if e.Port() == ap.Port() && (e.Addr() == ip || e.Addr() == embedded(ip)) {
			return nil
		}
	}
	return g.Check(ap.Addr())
}

// Control is a net.Dialer.Control function: it runs after name resolution,
// right before connect(2), with the literal address being dialed.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address and port", ErrRefused, address)
	}
	return g.CheckAddrPort(ap)
}
