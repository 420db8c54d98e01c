// Package redact hides credentials in URLs before they are printed or
// logged: passwords in the userinfo and the values of query parameters
// that carry keys or tokens (`?password=`, `?token=`, `?api_key=` ...).
package redact

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces a hidden value.
const Mask = "***"

// sensitiveExact are query parameter names (lower case) that hold a
// credential; sensitiveParts are substrings that mark one.
var (
	sensitiveExact = map[string]bool{"pass": true, "pwd": true, "key": true, "sig": true, "signature": true, "code": true}
	sensitiveParts = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "api-key", "auth", "credential", "private"}
)

// Sensitive reports whether a query parameter name looks like it holds a
// credential.
func Sensitive(name string) bool {
	n := strings.ToLower(name)
	if sensitiveExact[n] {
		return true
	}
	for _, p := range sensitiveParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// Credentials hides what a URL carries as a credential and keeps the rest
// readable, for settings (database and Redis URLs): the userinfo password
// and the values of sensitive query parameters become ***, the user name,
// host, path and other parameters (sslmode=disable) stay.
func Credentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	u.RawQuery = maskQuery(u.RawQuery, Sensitive)
	return unescapeMask(u.String())
}

// URL is a URL for a log line: scheme, host and path only, the userinfo
// dropped and every query value replaced by *** (a webhook URL's query is
// often its receiver's token).
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<unparseable URL>"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.RawQuery = maskQuery(u.RawQuery, func(string) bool { return true })
	return unescapeMask(u.String())
}

// maskQuery rewrites a raw query with the values of the parameters that
// hide says to hide masked; an unparseable query is masked whole.
func maskQuery(raw string, hide func(string) bool) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return Mask
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			if hide(k) {
				b.WriteString(Mask)
			} else {
				b.WriteString(url.QueryEscape(v))
			}
		}
	}
	return b.String()
}

// unescapeMask turns the escaped mask of a userinfo password back into ***.
func unescapeMask(s string) string { return strings.ReplaceAll(s, url.QueryEscape(Mask), Mask) }
