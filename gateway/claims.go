package gateway

import (
	"strings"
)

// claimValue finds a claim by name in the ID token's claims. The name is tried first as one
// key, so URL-shaped names such as "https://example.com/roles" (Auth0) work, and then as a
// dotted path into nested objects, such as "realm_access.roles" (Keycloak).
func claimValue(claims map[string]any, name string) (any, bool) {
	if name == "" {
		return nil, false
	}
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// claimStrings maps a claim to a list of header-safe strings: an array of strings, or a single
// string. Values that could not travel intact in a comma-separated header (commas, control
// characters, empty) are dropped rather than mangled.
func claimStrings(claims map[string]any, name string) []string {
	v, ok := claimValue(claims, name)
	if !ok {
		return nil
	}
	var raw []string
	switch t := v.(type) {
	case string:
		raw = []string{t}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				raw = append(raw, s)
			}
		}
	case []string:
		raw = t
	}
	out := raw[:0:0]
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s != "" && !strings.ContainsAny(s, ",") && headerSafe(s) {
			out = append(out, s)
		}
	}
	return out
}

// headerSafe reports whether s has no control characters (so it can be a header value as is).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// cleanHeaderValue drops control characters from a free-text claim (name, email).
func cleanHeaderValue(s string) string {
	if headerSafe(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
