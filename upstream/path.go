// Package upstream owns what the gateway sends to the services behind it: the route table,
// the one canonical form of a request path (NormalizePath), and the reverse proxy that strips
// every client-supplied identity and forwarding header before setting the gateway's own.
//
// The caller (package gateway) must normalise the path once with NormalizePath, match the
// route with Table.Match on that clean path, decide the policy on it, and only then call
// Proxy.Serve with the identity headers to add. This package makes no access decision.
package upstream

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadPath is wrapped by every NormalizePath rejection. Callers answer 400 and must not
// forward the request.
var ErrBadPath = errors.New("upstream: path rejected")

// maxPathLen bounds the escaped path NormalizePath accepts.
const maxPathLen = 8 << 10

func badPath(reason string) error { return fmt.Errorf("%w: %s", ErrBadPath, reason) }

// NormalizePath takes r.URL.EscapedPath() and returns the decoded, canonical path the gateway
// matches routes on AND forwards. It decodes percent-escapes exactly once (so "%252e" stays the
// literal "%2e"), resolves "." and ".." segments (also their %2e spellings) without climbing
// above the root, merges repeated slashes and keeps a trailing slash ("/a/." gives "/a/").
//
// It rejects, with an error wrapping ErrBadPath: a path not starting with '/', a path longer than
// 8 KiB, an encoded '/' or '\' (%2f, %5c, any case), any backslash, '#' or %23, ';' raw or
// encoded, NUL and other control characters raw or encoded (C0, DEL and C1), invalid
// percent-escapes, invalid UTF-8 after decoding, and ".." above the root.
//
// The caller must set r.URL.Path to the result and r.URL.RawPath to "" so that routing, policy
// and the forwarded request all see this one path.
func NormalizePath(escaped string) (string, error) {
	if len(escaped) > maxPathLen {
		return "", badPath("too long")
	}
	if escaped == "" || escaped[0] != '/' {
		return "", badPath("must start with /")
	}
	if isCanonical(escaped) {
		return escaped, nil
	}
	decoded, err := decodeOnce(escaped)
	if err != nil {
		return "", err
	}
	return resolveDots(decoded)
}

// isCanonical reports whether p is plain printable ASCII without '%', '\', '#', ';', empty,
// "." or ".." segments: then it is its own normal form and needs no allocation.
func isCanonical(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c <= 0x20 || c >= 0x7f || c == '%' || c == '\\' || c == '#' || c == ';' {
				return false
			}
			if c != '/' {
				continue
			}
		}
		seg := p[segStart:i]
		if (seg == "" && i < len(p)) || seg == "." || seg == ".." {
			return false
		}
		segStart = i + 1
	}
	return true
}

// decodeOnce percent-decodes p a single time, rejecting what must never reach routing.
func decodeOnce(p string) (string, error) {
	var b strings.Builder
	b.Grow(len(p))
	ascii := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", badPath("invalid percent-escape")
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if c == '/' {
				return "", badPath("encoded slash")
			}
		}
		switch {
		case c == '\\':
			return "", badPath("backslash")
		case c == '#':
			return "", badPath("fragment character")
		case c == ';':
			return "", badPath("semicolon")
		case c < 0x20 || c == 0x7f:
			return "", badPath("control character")
		case c >= 0x80:
			ascii = false
		}
		b.WriteByte(c)
	}
	s := b.String()
	if !ascii {
		if !utf8.ValidString(s) {
			return "", badPath("invalid UTF-8")
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				return "", badPath("control character")
			}
		}
	}
	return s, nil
}

// resolveDots merges slashes and removes dot-segments (RFC 3986 §5.2.4) from a decoded path
// that starts with '/'. A ".." above the root is an error rather than silently dropped.
func resolveDots(p string) (string, error) {
	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	for rest := p[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		trailing = true
		switch seg {
		case "", ".":
		case "..":
			if len(segs) == 0 {
				return "", badPath("dot-dot above root")
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, seg)
			trailing = more
		}
		if !more {
			break
		}
		rest = after
	}
	if len(segs) == 0 {
		return "/", nil
	}
	n := len(segs) + 1
	for _, s := range segs {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing {
		b.WriteByte('/')
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
