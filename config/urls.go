package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// httpURL parses s as an absolute http(s) URL with a host and no credentials. The problem it
// returns never repeats s (a URL may carry a password).
func httpURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return nil, "is not a valid URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "must be an absolute http:// or https:// URL"
	}
	if u.Hostname() == "" {
		return nil, "must include a host"
	}
	if u.User != nil {
		return nil, "must not contain credentials (user:password@)"
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, "has an invalid port"
		}
	}
	return u, ""
}

// isLoopbackHost reports whether host (without port or brackets) is localhost or a loopback
// address (127.0.0.0/8, ::1).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// isLoopbackHTTP reports whether u is a plain-http URL on a loopback host.
func isLoopbackHTTP(u *url.URL) bool {
	return u.Scheme == "http" && isLoopbackHost(u.Hostname())
}

// parsePrefix parses a CIDR or a bare IP address (a single-address prefix).
func parsePrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// checkListen checks a listen address ("host:port", host optional). It returns a problem or "".
func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return `must be host:port, e.g. ":8080" or "127.0.0.1:9091"`
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "has an invalid port"
	}
	if host != "" && !isHostname(strings.ToLower(host)) {
		if _, err := netip.ParseAddr(host); err != nil {
			return "has an invalid host"
		}
	}
	return ""
}

// sameListener reports whether two valid listen addresses would bind the same port.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return strings.EqualFold(ha, hb) || wild(ha) || wild(hb)
}

// isHostname reports whether s is a lower-case DNS name (letters, digits, hyphens, dots).
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// isToken reports whether s is an RFC 7230 token, as a cookie name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isLocalPath reports whether s is a path on this origin that a browser cannot read as another
// host ("//evil", "/\evil") and that has no control characters.
func isLocalPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
