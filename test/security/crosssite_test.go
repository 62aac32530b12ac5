package security

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/fixture"
)

const (
	spaOrigin  = "https://spa.example"
	evilOrigin = "https://evil.example"
)

// crossSiteCase is one request carried (or not) by bob's cookie.
type crossSiteCase struct {
	name       string
	method     string
	target     string
	headers    []string
	anonymous  bool // send without bob's cookie
	wantStatus int
	wantFwd    bool   // the upstream must receive it (and must not otherwise)
	wantACAO   string // exact Access-Control-Allow-Origin; "" means the header must be absent
}

// runCrossSite sends each case raw and checks status, forwarding and CORS headers.
func runCrossSite(t *testing.T, g *fixture.Gateway, cookie string, tests []crossSiteCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append([]string{}, tt.headers...)
			if !tt.anonymous {
				hdr = append(hdr, cookie)
			}
			body := ""
			if tt.method != "" && tt.method != http.MethodGet && tt.method != http.MethodOptions {
				body = `{"a":1}`
			}
			before := g.Echo.Count()
			resp, respBody := sendRaw(t, g.URL, rawReq{method: tt.method, target: tt.target, headers: hdr, body: body})
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.wantStatus, respBody)
			}
			if fwd := g.Echo.Count() != before; fwd != tt.wantFwd {
				t.Errorf("forwarded upstream: %v, want %v", fwd, tt.wantFwd)
			}
			acao := resp.Header.Values("Access-Control-Allow-Origin")
			switch {
			case tt.wantACAO == "" && len(acao) != 0:
				t.Errorf("Access-Control-Allow-Origin %q, want none", acao)
			case tt.wantACAO != "" && (len(acao) != 1 || acao[0] != tt.wantACAO):
				t.Errorf("Access-Control-Allow-Origin %q, want [%q]", acao, tt.wantACAO)
			case tt.wantACAO != "" && resp.Header.Get("Access-Control-Allow-Credentials") != "true":
				t.Errorf("Access-Control-Allow-Credentials %q, want true", resp.Header.Get("Access-Control-Allow-Credentials"))
			}
			if tt.wantACAO != "" && !varyHasOrigin(resp.Header) {
				t.Errorf("Vary %q lacks Origin", resp.Header.Values("Vary"))
			}
		})
	}
}

func varyHasOrigin(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

// TestCSRF covers CSRF-01..CSRF-05 and CSRF-08 on an origin-checked route (/dashboard) and a
// csrf: header route (/api/), with bob's cookie.
func TestCSRF(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{AllowedOrigins: []string{spaOrigin}})
	_, bob := loginAs(t, g, "bob")
	self := "Origin: " + g.URL
	runCrossSite(t, g, bob, []crossSiteCase{
		{name: "foreign Origin", method: "POST", target: "/dashboard", headers: []string{"Origin: " + evilOrigin},
			wantStatus: http.StatusForbidden},
		{name: "own Origin", method: "POST", target: "/dashboard", headers: []string{self}, wantStatus: http.StatusOK, wantFwd: true},
		{name: "own Origin in upper case", method: "POST", target: "/dashboard", headers: []string{"Origin: " + strings.ToUpper(g.URL)},
			wantStatus: http.StatusOK, wantFwd: true},
		{name: "CSRF-05 Sec-Fetch-Site cross-site without Origin", method: "POST", target: "/dashboard",
			headers: []string{"Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: no-cors"}, wantStatus: http.StatusForbidden},
		{name: "Sec-Fetch-Site same-site without Origin", method: "POST", target: "/dashboard",
			headers: []string{"Sec-Fetch-Site: same-site"}, wantStatus: http.StatusForbidden},
		{name: "CSRF-02 Origin null form post", method: "POST", target: "/dashboard",
			headers: []string{"Origin: null", "Content-Type: application/x-www-form-urlencoded"}, wantStatus: http.StatusForbidden},
		{name: "look-alike Origin", method: "POST", target: "/dashboard", headers: []string{"Origin: " + g.URL + ".evil.example"},
			wantStatus: http.StatusForbidden},
		{name: "PUT foreign", method: "PUT", target: "/dashboard", headers: []string{"Origin: " + evilOrigin}, wantStatus: http.StatusForbidden},
		{name: "PATCH foreign", method: "PATCH", target: "/dashboard", headers: []string{"Origin: " + evilOrigin}, wantStatus: http.StatusForbidden},
		{name: "DELETE foreign", method: "DELETE", target: "/dashboard", headers: []string{"Origin: " + evilOrigin}, wantStatus: http.StatusForbidden},
		{name: "non-browser client without Origin", method: "POST", target: "/dashboard", wantStatus: http.StatusOK, wantFwd: true},
		{name: "CSRF-01 text/plain from a foreign Origin on /api", method: "POST", target: "/api/items",
			headers: []string{"Origin: " + evilOrigin, "Content-Type: text/plain"}, wantStatus: http.StatusForbidden},
		{name: "CSRF-03 /api without X-CSRF", method: "POST", target: "/api/x", headers: []string{self}, wantStatus: http.StatusForbidden},
		{name: "/api with X-CSRF: 1", method: "POST", target: "/api/x", headers: []string{self, "X-CSRF: 1"},
			wantStatus: http.StatusOK, wantFwd: true},
		{name: "/api with X-CSRF: true", method: "POST", target: "/api/x", headers: []string{self, "X-CSRF: true"}, wantStatus: http.StatusForbidden},
		{name: "/api with X-CSRF: 1 twice", method: "POST", target: "/api/x", headers: []string{self, "X-CSRF: 1", "X-CSRF: 1"},
			wantStatus: http.StatusForbidden},
		{name: "/api with empty X-CSRF", method: "POST", target: "/api/x", headers: []string{self, "X-CSRF:"}, wantStatus: http.StatusForbidden},
		{name: "CSRF-03 DELETE /api without X-CSRF", method: "DELETE", target: "/api/x", headers: []string{self}, wantStatus: http.StatusForbidden},
		{name: "CSRF-04 X-CSRF: 1 from a foreign Origin", method: "POST", target: "/api/x", headers: []string{"Origin: " + evilOrigin, "X-CSRF: 1"},
			wantStatus: http.StatusForbidden},
		{name: "allowed SPA Origin with X-CSRF: 1", method: "POST", target: "/api/x", headers: []string{"Origin: " + spaOrigin, "X-CSRF: 1"},
			wantStatus: http.StatusOK, wantFwd: true, wantACAO: spaOrigin},
		{name: "GET /api needs no X-CSRF", target: "/api/x", headers: []string{self}, wantStatus: http.StatusOK, wantFwd: true},
	})

	t.Run("logout from a foreign Origin", func(t *testing.T) {
		resp, _ := sendRaw(t, g.URL, rawReq{method: "POST", target: "/.auth/logout", headers: []string{bob, "Origin: " + evilOrigin}})
		if resp.StatusCode != http.StatusForbidden || len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("status %d Set-Cookie %q, want 403 and no cookie change", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		if me, _ := sendRaw(t, g.URL, rawReq{target: "/.auth/me", headers: []string{bob}}); me.StatusCode != http.StatusOK {
			t.Errorf("session dead after a refused logout: /.auth/me %d", me.StatusCode)
		}
	})
	t.Run("CSRF-08 GET logout only shows a page", func(t *testing.T) {
		resp, body := sendRaw(t, g.URL, rawReq{target: "/.auth/logout", headers: []string{bob, "Sec-Fetch-Site: cross-site"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `method="post"`) {
			t.Errorf("GET /.auth/logout: %d", resp.StatusCode)
		}
		if me, _ := sendRaw(t, g.URL, rawReq{target: "/.auth/me", headers: []string{bob}}); me.StatusCode != http.StatusOK {
			t.Errorf("GET /.auth/logout ended the session: /.auth/me %d", me.StatusCode)
		}
	})
}

// TestCORS covers CORS-01..CORS-06 and the SPEC rule that the gateway's own answers to an
// allowed origin carry the CORS headers.
func TestCORS(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{AllowedOrigins: []string{spaOrigin}})
	_, bob := loginAs(t, g, "bob")
	preflight := func(origin string) []string {
		return []string{"Origin: " + origin, "Access-Control-Request-Method: DELETE",
			"Access-Control-Request-Headers: x-csrf, content-type"}
	}
	runCrossSite(t, g, bob, []crossSiteCase{
		{name: "CORS-01 preflight from the allowed origin", method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin),
			anonymous: true, wantStatus: http.StatusNoContent, wantACAO: spaOrigin},
		{name: "CORS-02 preflight from a foreign origin", method: "OPTIONS", target: "/api/items", headers: preflight(evilOrigin),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-03 preflight from null", method: "OPTIONS", target: "/api/items", headers: preflight("null"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-04 suffix look-alike", method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin + ".evil.com"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-04 prefix look-alike", method: "OPTIONS", target: "/api/items", headers: preflight("https://evil-spa.example"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-04 other scheme", method: "OPTIONS", target: "/api/items", headers: preflight("http://spa.example"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-04 other port", method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin + ":8443"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-04 trailing dot", method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin + "."),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "CORS-05 special character", method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin + "_.evil.example"),
			anonymous: true, wantStatus: http.StatusForbidden},
		{name: "preflight asking a lower-case method", method: "OPTIONS", target: "/api/items",
			headers: []string{"Origin: " + spaOrigin, "Access-Control-Request-Method: delete"}, anonymous: true, wantStatus: http.StatusForbidden},
		{name: "GET from the allowed origin with a session", target: "/api/x", headers: []string{"Origin: " + spaOrigin},
			wantStatus: http.StatusOK, wantFwd: true, wantACAO: spaOrigin},
		{name: "GET from a foreign origin gets no CORS headers", target: "/api/x", headers: []string{"Origin: " + evilOrigin},
			wantStatus: http.StatusOK, wantFwd: true},
		{name: "401 to the allowed origin is readable", target: "/api/x", headers: []string{"Origin: " + spaOrigin},
			anonymous: true, wantStatus: http.StatusUnauthorized, wantACAO: spaOrigin},
		{name: "401 to a foreign origin is not", target: "/api/x", headers: []string{"Origin: " + evilOrigin},
			anonymous: true, wantStatus: http.StatusUnauthorized},
		{name: "403 to the allowed origin is readable", target: "/admin/x", headers: []string{"Origin: " + spaOrigin},
			wantStatus: http.StatusForbidden, wantACAO: spaOrigin},
		{name: "/.auth/me to the allowed origin", target: "/.auth/me", headers: []string{"Origin: " + spaOrigin},
			wantStatus: http.StatusOK, wantACAO: spaOrigin},
	})

	t.Run("CORS-01 preflight lists methods explicitly and never *", func(t *testing.T) {
		resp, _ := sendRaw(t, g.URL, rawReq{method: "OPTIONS", target: "/api/items", headers: preflight(spaOrigin)})
		methods := strings.Split(resp.Header.Get("Access-Control-Allow-Methods"), ", ")
		if !slices.Contains(methods, "DELETE") || slices.Contains(methods, "*") || resp.Header.Get("Access-Control-Allow-Origin") == "*" {
			t.Errorf("Access-Control-Allow-Methods %q, ACAO %q", methods, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// TestVaryOrigin: with allowed origins every answer carries Vary: Origin (a foreign origin's
// answer lacks the CORS headers an allowed one gets, so caches must keep them apart); without
// any, no answer depends on Origin and none carries it.
func TestVaryOrigin(t *testing.T) {
	for _, tt := range []struct {
		name     string
		allowed  []string
		wantVary bool
	}{
		{name: "allowed origins", allowed: []string{spaOrigin}, wantVary: true},
		{name: "no allowed origins", wantVary: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := fixture.StartGateway(t, fixture.GatewayOptions{AllowedOrigins: tt.allowed})
			_, bob := loginAs(t, g, "bob")
			for _, hdr := range [][]string{{bob}, {bob, "Origin: " + evilOrigin}, {bob, "Origin: " + g.URL}} {
				resp, body := sendRaw(t, g.URL, rawReq{target: "/api/x", headers: hdr})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /api/x %q: %d %s", hdr[1:], resp.StatusCode, body)
				}
				if got := varyHasOrigin(resp.Header); got != tt.wantVary {
					t.Errorf("GET /api/x %q: Vary %q, want Origin in it: %v", hdr[1:], resp.Header.Values("Vary"), tt.wantVary)
				}
			}
		})
	}
}

// TestWebSocketOrigin covers WS-01..WS-03: an upgrade carried by bob's cookie from a foreign
// site is refused before it reaches the upstream.
func TestWebSocketOrigin(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{AllowedOrigins: []string{spaOrigin}})
	_, bob := loginAs(t, g, "bob")
	ws := func(extra ...string) []string {
		return append([]string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
			"Sec-WebSocket-Version: 13"}, extra...)
	}
	runCrossSite(t, g, bob, []crossSiteCase{
		{name: "WS-01 foreign Origin", target: "/api/ws", headers: ws("Origin: " + evilOrigin), wantStatus: http.StatusForbidden},
		{name: "WS-01 foreign Origin on an origin-checked route", target: "/dashboard/ws", headers: ws("Origin: " + evilOrigin),
			wantStatus: http.StatusForbidden},
		{name: "WS-02 Origin null", target: "/api/ws", headers: ws("Origin: null"), wantStatus: http.StatusForbidden},
		{name: "WS-02 cross-site fetch metadata without Origin", target: "/api/ws", headers: ws("Sec-Fetch-Site: cross-site"),
			wantStatus: http.StatusForbidden},
		{name: "upper-case Upgrade token", target: "/api/ws",
			headers: []string{"Upgrade: WebSocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
				"Sec-WebSocket-Version: 13", "Origin: " + evilOrigin}, wantStatus: http.StatusForbidden},
		{name: "WS-03 allowed Origin without a cookie", target: "/api/ws", headers: ws("Origin: " + spaOrigin), anonymous: true,
			wantStatus: http.StatusUnauthorized, wantACAO: spaOrigin},
		{name: "control: own Origin is forwarded", target: "/api/ws", headers: ws("Origin: " + g.URL), wantStatus: http.StatusOK, wantFwd: true},
	})
}
