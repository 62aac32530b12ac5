package upstream

import (
	"net/http"
	"strings"
)

// identityPrefix is the dash spelling, lower-case, of the gateway's identity header family.
const identityPrefix = "x-auth-"

// IsIdentityHeader reports whether name belongs to the gateway's X-Auth-* family in any
// spelling: compared lower-case with '_' mapped to '-', so "X_Auth_User_Id", "x_auth_roles"
// and "X-Auth_Roles" all count (WSGI, PHP and others fold them into one name).
func IsIdentityHeader(name string) bool { return hasPrefixFoldDash(name, identityPrefix) }

// StripIdentityHeaders deletes every identity header (see IsIdentityHeader) from h. Proxy
// already does this on every forwarded request; other callers (forward-auth answers) must
// call it themselves before adding the gateway's own values.
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if IsIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// droppedNames are removed from every forwarded request in every spelling: headers some
// upstream frameworks route, authorise or log on, which only the gateway may set.
var droppedNames = [...]string{
	"forwarded",
	"x-real-ip",
	"x-client-ip",
	"true-client-ip",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
	"x-original-url",
	"x-original-uri",
	"x-rewrite-url",
	"x-original-host",
	"x-host",
}

// isDroppedHeader reports whether a client header must not reach the upstream: identity
// headers, every X-Forwarded-* (the gateway sets its own), and droppedNames.
func isDroppedHeader(name string) bool {
	if hasPrefixFoldDash(name, identityPrefix) || hasPrefixFoldDash(name, "x-forwarded-") {
		return true
	}
	for _, d := range droppedNames {
		if len(name) == len(d) && hasPrefixFoldDash(name, d) {
			return true
		}
	}
	return false
}

// hasPrefixFoldDash reports whether name, lower-cased with '_' mapped to '-', starts with
// prefix (which must be lower-case with dashes). It allocates nothing.
func hasPrefixFoldDash(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := lowerASCII(name[i])
		if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// filterCookieHeader removes the cookies owned(name) reports from every Cookie header of h.
// Other cookie pairs are kept byte-for-byte and in order; a header left empty is deleted.
func filterCookieHeader(h http.Header, owned func(string) bool) {
	if owned == nil {
		return
	}
	vals := h["Cookie"]
	out := vals[:0]
	for _, v := range vals {
		if v = filterCookieLine(v, owned); v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// filterCookieLine drops owned pairs from one "a=1; b=2" line; it returns line itself when
// nothing is owned, and allocates only when more than one pair is kept.
func filterCookieLine(line string, owned func(string) bool) string {
	if !lineHasOwned(line, owned) {
		return line
	}
	var (
		first string // the first kept pair, while it is the only one
		b     strings.Builder
	)
	for rest := line; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		pair = strings.TrimSpace(pair)
		if pair == "" || owned(cookieName(pair)) {
			continue
		}
		switch {
		case first == "" && b.Len() == 0:
			first = pair
		case b.Len() == 0:
			b.Grow(len(line))
			b.WriteString(first)
			fallthrough
		default:
			b.WriteString("; ")
			b.WriteString(pair)
		}
	}
	if b.Len() == 0 {
		return first
	}
	return b.String()
}

func lineHasOwned(line string, owned func(string) bool) bool {
	for rest := line; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		if owned(cookieName(pair)) {
			return true
		}
	}
	return false
}

// cookieName returns the trimmed name of a "name=value" pair (the whole pair without '=').
func cookieName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	return strings.TrimSpace(name)
}

// setCookieName returns the name under which a browser would send back the cookie set by
// one Set-Cookie value. A nameless cookie ("=sid=x" or "sid") is sent as its bare value, so
// its value's own name is what counts.
func setCookieName(v string) string {
	pair, _, _ := strings.Cut(v, ";")
	name, value, found := strings.Cut(pair, "=")
	if found && strings.TrimSpace(name) == "" {
		return cookieName(value)
	}
	return strings.TrimSpace(name)
}

// dropOwnedSetCookies removes response Set-Cookie headers that would set a cookie the gateway
// owns, so an upstream can never overwrite or clear the gateway's session.
func dropOwnedSetCookies(h http.Header, owned func(string) bool) {
	vals, ok := h["Set-Cookie"]
	if !ok || owned == nil {
		return
	}
	out := vals[:0]
	for _, v := range vals {
		if !owned(setCookieName(v)) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = out
}
