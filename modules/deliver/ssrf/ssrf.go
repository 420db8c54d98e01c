// Package ssrf refuses webhook connections to addresses inside the
// deployment: loopback, private (RFC 1918, IPv6 ULA), link-local (incl. the
// cloud metadata address 169.254.169.254), CGNAT, unspecified, multicast and
// their IPv4-mapped IPv6 forms. The check runs in net.Dialer.Control, on the
// IP address actually being dialed, so a hostname that resolves differently
// at check time and at dial time (DNS rebinding) cannot slip through, and
// every redirect hop is checked the same way.
package ssrf

import (
	"errors"
	"fmt"
	"net"
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
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 (embeds IPv4)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("2002::/16"),      // 6to4 (embeds IPv4)
	netip.MustParsePrefix("2001::/32"),      // Teredo (embeds IPv4)
}

// Guard decides which addresses a webhook may connect to.
type Guard struct{ allow []netip.Prefix }

// New returns a guard that refuses internal ranges except those in allow.
func New(allow []netip.Prefix) *Guard { return &Guard{allow: allow} }

// Check returns nil when ip may be dialed.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrRefused)
	}
	ip = ip.WithZone("")
	// The allow-list is consulted on the address as written and unmapped,
	// so 127.0.0.0/8 also allows ::ffff:127.0.0.1.
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return nil
		}
	}
	un := ip.Unmap()
	for _, p := range blocked {
		if p.Contains(un) {
			return fmt.Errorf("%w: %s is in %s", ErrRefused, ip, p)
		}
	}
	return nil
}

// Control is a net.Dialer.Control function: it runs after name resolution,
// right before connect(2), with the literal address being dialed.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: bad address %q", ErrRefused, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrRefused, host)
	}
	return g.Check(ip)
}
