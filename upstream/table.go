package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Route is one entry of the route table: which requests it takes and where they go.
// Access policy is not part of it; the caller keeps that next to the route, by index.
type Route struct {
	// Name identifies the route in logs and errors.
	Name string
	// Host, when set, is an exact host match (ASCII case-insensitive; the request's port and a
	// trailing dot are ignored). It must not contain a port.
	Host string
	// PathPrefix matches on a segment boundary: "/admin/" and "/admin" both match "/admin",
	// "/admin/" and "/admin/x", never "/adminX". It must be a normalised path (see NormalizePath).
	PathPrefix string
	// Target is scheme://host[:port][/base]; http or https, no query, fragment or user info.
	Target *url.URL
	// StripPrefix removes PathPrefix before forwarding; the result always starts with '/'.
	StripPrefix bool
	// Timeout bounds the time until the upstream's response headers (504 when exceeded);
	// zero means no limit. Streams and WebSockets are not cut once headers have arrived.
	Timeout time.Duration
}

// Table is an immutable, ordered route list; the first match wins. It is safe for concurrent use.
type Table struct {
	routes []Route
	hosts  []string // lower-case host, "" for any
	bases  []string // lower-case PathPrefix without its trailing '/'
}

// NewTable validates routes and returns a table that keeps their order. Ordering (for example
// longer prefixes first) is the configuration author's job; NewTable does not reorder.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{
		routes: make([]Route, len(routes)),
		hosts:  make([]string, len(routes)),
		bases:  make([]string, len(routes)),
	}
	var errs []error
	for i, r := range routes {
		if err := validateRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("upstream: route %d (%q): %w", i, r.Name, err))
			continue
		}
		t.routes[i] = r
		t.hosts[i] = strings.ToLower(strings.TrimSuffix(r.Host, "."))
		t.bases[i] = strings.ToLower(strings.TrimSuffix(r.PathPrefix, "/"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func validateRoute(r Route) error {
	if r.PathPrefix == "" || r.PathPrefix[0] != '/' {
		return errors.New("path_prefix must start with /")
	}
	escaped := (&url.URL{Path: r.PathPrefix}).EscapedPath()
	if clean, err := NormalizePath(escaped); err != nil || clean != r.PathPrefix {
		return fmt.Errorf("path_prefix %q is not a normalised path", r.PathPrefix)
	}
	if r.Host != "" {
		h := strings.TrimSuffix(r.Host, ".")
		if h == "" || strings.ContainsAny(h, ":/[]@ ") || !isASCIIPrint(h) {
			return fmt.Errorf("host %q must be a bare host name without port", r.Host)
		}
	}
	if r.Timeout < 0 {
		return errors.New("timeout must not be negative")
	}
	return validateTarget(r.Target)
}

func validateTarget(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("upstream target missing")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("upstream scheme %q: want http or https", u.Scheme)
	case u.Host == "" || u.Opaque != "":
		return errors.New("upstream target needs a host")
	case u.User != nil:
		return errors.New("upstream target must not carry user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("upstream target must not have a query or fragment")
	}
	return nil
}

// Match returns the index of the first route whose host matches and whose PathPrefix matches
// cleanPath on a segment boundary, comparing ASCII case-insensitively (so "/ADMIN/users" cannot
// slip past a protected "/admin/" prefix); -1 when none. cleanPath must come from NormalizePath:
// Match does no decoding or cleaning of its own. host is r.Host (a port and a trailing dot are
// ignored).
func (t *Table) Match(host, cleanPath string) int {
	h := hostOnly(host)
	for i, base := range t.bases {
		if rh := t.hosts[i]; rh != "" && !equalFoldASCII(h, rh) {
			continue
		}
		if hasPathPrefix(cleanPath, base) {
			return i
		}
	}
	return -1
}

// Route returns route i as given to NewTable. It panics when i is out of range.
func (t *Table) Route(i int) Route { return t.routes[i] }

// Len returns the number of routes.
func (t *Table) Len() int { return len(t.routes) }

// hasPathPrefix reports whether p equals base or continues it with '/' (base is lower-case
// and has no trailing slash; "" is the root prefix and matches every path starting with '/').
func hasPathPrefix(p, base string) bool {
	if len(p) < len(base) || !equalFoldASCII(p[:len(base)], base) {
		return false
	}
	return len(p) == len(base) || p[len(base)] == '/'
}

// hostOnly drops a port and one trailing dot from a Host header value.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		} else {
			h = h[:i]
		}
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.TrimSuffix(h, ".")
}

// equalFoldASCII compares ASCII case-insensitively; non-ASCII bytes must match exactly, so
// Unicode look-alikes (the Kelvin sign for 'k') never fold into a configured name.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isASCIIPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
