package security

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/fixture"
)

// TestSessionCookieTampering covers SES-05, SES-06, SES-07, ROB-04 and N-20: anything but the
// one valid session cookie is unauthenticated (401, not forwarded), and a logged-out cookie
// stays dead.
func TestSessionCookieTampering(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	_, bob := loginAs(t, g, "bob")
	valid := strings.TrimPrefix(bob, "Cookie: "+fixture.CookieName+"=")
	name := fixture.CookieName
	tests := []struct {
		name    string
		target  string
		cookie  string   // whole Cookie header value; "" sends none
		headers []string // more request headers
		wantOK  bool
	}{
		{name: "control: valid cookie", target: "/dashboard", cookie: name + "=" + valid, wantOK: true},
		{name: "wildcard", target: "/dashboard", cookie: name + "=*"},
		{name: "key-like value", target: "/dashboard", cookie: name + "=sess:*"},
		{name: "traversal", target: "/dashboard", cookie: name + "=../../x"},
		{name: "encoded CRLF command", target: "/dashboard", cookie: name + "=%0D%0AFLUSHALL%0D%0A"},
		{name: "4 KiB value", target: "/dashboard", cookie: name + "=" + strings.Repeat("A", 4096)},
		{name: "empty value", target: "/dashboard", cookie: name + "="},
		{name: "name without value", target: "/dashboard", cookie: name},
		{name: "only separators", target: "/dashboard", cookie: ";;;=;"},
		{name: "valid value with a flipped last byte", target: "/dashboard", cookie: name + "=" + flipLast(valid)},
		{name: "SES-06 junk then valid", target: "/dashboard", cookie: name + "=junk; " + name + "=" + valid},
		{name: "SES-06 valid then junk", target: "/dashboard", cookie: name + "=" + valid + "; " + name + "=junk"},
		{name: "SES-06 valid twice", target: "/dashboard", cookie: name + "=" + valid + "; " + name + "=" + valid},
		{name: "other cookie name with the valid value", target: "/dashboard", cookie: "sid=" + valid},
		{name: "flow cookie name with the valid value", target: "/dashboard", cookie: name + "-tx=" + valid},
		{name: "N-20 session id in the query", target: "/dashboard?" + name + "=" + url.QueryEscape(valid)},
		{name: "N-20 session id as a bearer token", target: "/dashboard", headers: []string{"Authorization: Bearer " + valid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append([]string{}, tt.headers...)
			if tt.cookie != "" {
				hdr = append(hdr, "Cookie: "+tt.cookie)
			}
			before := g.Echo.Count()
			resp, body := sendRaw(t, g.URL, rawReq{target: tt.target, headers: hdr})
			fwd := g.Echo.Count() != before
			if tt.wantOK {
				if resp.StatusCode != http.StatusOK || !fwd {
					t.Errorf("status %d forwarded %v, want 200 and forwarded (%s)", resp.StatusCode, fwd, body)
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || fwd {
				t.Errorf("status %d forwarded %v, want 401 and not forwarded (%s)", resp.StatusCode, fwd, body)
			}
			if strings.Contains(strings.ToLower(body), "redis") {
				t.Errorf("store detail in the answer: %s", body)
			}
		})
	}

	t.Run("SES-07 cookie replayed after logout", func(t *testing.T) {
		c, line := loginAs(t, g, "alice")
		resp, _ := do(t, c, http.MethodPost, g.URL+"/.auth/logout", "Origin: "+g.URL)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		cleared := false
		for _, ck := range resp.Cookies() {
			cleared = cleared || (ck.Name == fixture.CookieName && ck.MaxAge < 0 && ck.Path == "/")
		}
		if !cleared {
			t.Errorf("logout does not expire the cookie: %q", resp.Header.Values("Set-Cookie"))
		}
		for _, target := range []string{"/.auth/me", "/dashboard"} {
			before := g.Echo.Count()
			if r, _ := sendRaw(t, g.URL, rawReq{target: target, headers: []string{line}}); r.StatusCode != http.StatusUnauthorized || g.Echo.Count() != before {
				t.Errorf("%s with the old cookie: %d", target, r.StatusCode)
			}
		}
	})
}

// flipLast changes the last character of a cookie value to another valid one.
func flipLast(v string) string {
	if v == "" {
		return "A"
	}
	last := v[len(v)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return v[:len(v)-1] + string(repl)
}

// TestUntrustedHostHeader covers HDR-07 and PATH-17 (unknown authority): a Host the gateway
// is not configured for must not be asserted to the upstream as X-Forwarded-Host. Either the
// request is refused (421/400/404, not forwarded) or the upstream gets the configured public
// host.
func TestUntrustedHostHeader(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	gwHost := strings.TrimPrefix(g.URL, "http://")
	tests := []struct {
		name    string
		target  string
		headers []string
	}{
		{name: "Host header of another site", target: "/public/x", headers: []string{"Host: evil.example"}},
		{name: "absolute-form of another site", target: "http://evil.example/public/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.Echo.Count()
			resp, _ := sendRaw(t, g.URL, rawReq{target: tt.target, headers: tt.headers})
			got := g.Echo.All()[before:]
			if len(got) == 0 {
				if resp.StatusCode < 400 {
					t.Errorf("status %d without forwarding", resp.StatusCode)
				}
				return
			}
			if xfh := got[0].Header.Values("X-Forwarded-Host"); len(xfh) != 1 || xfh[0] != gwHost {
				t.Errorf("upstream X-Forwarded-Host %q, want [%q] (the configured public host)", xfh, gwHost)
			}
		})
	}
}
