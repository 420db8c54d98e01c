package signin

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// IPExtractor is the echo IP extractor for a server behind the given
// trusted proxies: with none, the client is the socket's peer and
// X-Forwarded-For / X-Real-IP are ignored; otherwise X-Forwarded-For is
// read from the right, skipping only addresses inside trusted (loopback and
// private ranges are not trusted unless listed).
func IPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// ClientIP is the request's client address in canonical form (see
// Normalize). It relies on the echo instance's IPExtractor; without one it
// takes the socket's peer, never a request header.
func ClientIP(c echo.Context) string {
	if c.Echo() == nil || c.Echo().IPExtractor == nil {
		return Normalize(directIP(c.Request()))
	}
	return Normalize(c.RealIP())
}

func directIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Normalize returns an address as canonical text: IPv4-mapped IPv6 as
// IPv4, IPv6 compressed and without zone. Anything else is "unknown", so
// nothing a client sends becomes a key or a log field as it came.
func Normalize(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return "unknown"
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return "unknown"
	}
	return a.Unmap().WithZone("").String()
}

// bucket is what the per-address limit counts: the address itself, or for
// IPv6 its /64, since one client commonly holds a whole /64.
func bucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
