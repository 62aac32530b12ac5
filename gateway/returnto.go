package gateway

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds the length of a return_to value; longer values fall back to "/".
const maxReturnTo = 2048

// SafeReturnTo returns raw when it is a same-origin path that is safe to write, byte for byte,
// into a Location header, and "/" otherwise. The value it returns is the one that must be
// written: the check and the use read the same string (no re-encoding, no path cleaning).
//
// Accepted: printable ASCII only, starting with a single "/", no backslash, no "//" anywhere in
// the path, no dot segments, nothing under the gateway's own /.auth/ prefix, in raw or
// percent-decoded form. Everything else (other hosts, scheme-relative "//x", "/\x", schemes
// such as "https:evil.com" or "javascript:", control characters, encoded variants) is replaced.
func SafeReturnTo(raw string) string {
	if !safeReturnTo(raw) {
		return "/"
	}
	return raw
}

func safeReturnTo(raw string) bool {
	if raw == "" || len(raw) > maxReturnTo || raw[0] != '/' {
		return false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return false
	}
	p := u.EscapedPath()
	decoded, err := url.PathUnescape(p)
	if err != nil {
		return false
	}
	for _, s := range [...]string{p, decoded} {
		if !safePath(s) {
			return false
		}
	}
	return true
}

// safePath reports whether an (escaped or decoded) path is an absolute path without tricks.
func safePath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	lower := strings.ToLower(p)
	return lower != authPrefix[:len(authPrefix)-1] && !strings.HasPrefix(lower, authPrefix)
}
