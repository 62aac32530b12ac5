package security

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// TestRouteMethods covers UP-04 and the SPEC rule "a method not in a route's methods gets 405
// with an Allow header": refused methods never reach the upstream, with or without a session,
// and a CORS preflight cannot ask for them either.
func TestRouteMethods(t *testing.T) {
	routes := []gateway.Route{
		{Route: upstream.Route{Name: "readonly", PathPrefix: "/ro/"}, Methods: []string{"GET"}},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}
	g := fixture.StartGateway(t, fixture.GatewayOptions{Routes: routes, AllowedOrigins: []string{spaOrigin}})
	_, bob := loginAs(t, g, "bob")
	tests := []struct {
		name       string
		method     string
		headers    []string
		anonymous  bool
		wantStatus int
		wantAllow  string
		wantFwd    bool
	}{
		{name: "POST with a session", method: "POST", headers: []string{"Origin: " + g.URL}, wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET"},
		{name: "POST anonymously", method: "POST", anonymous: true, wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET"},
		{name: "DELETE with a session", method: "DELETE", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET"},
		{name: "PUT with a session", method: "PUT", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET"},
		{name: "lower-case post", method: "post", wantStatus: http.StatusBadRequest},
		{name: "lower-case get", method: "get", wantStatus: http.StatusBadRequest},
		{name: "TRACE", method: "TRACE", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET"},
		{name: "method override header does not help", method: "GET", headers: []string{"X-HTTP-Method-Override: DELETE"},
			wantStatus: http.StatusOK, wantFwd: true},
		{name: "preflight for DELETE from an allowed origin", method: "OPTIONS", anonymous: true,
			headers:    []string{"Origin: " + spaOrigin, "Access-Control-Request-Method: DELETE"},
			wantStatus: http.StatusForbidden},
		{name: "control: GET with a session", method: "GET", wantStatus: http.StatusOK, wantFwd: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append([]string{}, tt.headers...)
			if !tt.anonymous {
				hdr = append(hdr, bob)
			}
			before := g.Echo.Count()
			resp, body := sendRaw(t, g.URL, rawReq{method: tt.method, target: "/ro/items", headers: hdr})
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if allow := resp.Header.Values("Allow"); tt.wantAllow != "" && (len(allow) != 1 || allow[0] != tt.wantAllow) {
				t.Errorf("Allow %q, want [%q]", allow, tt.wantAllow)
			}
			got := g.Echo.All()[before:]
			if (len(got) == 1) != tt.wantFwd || len(got) > 1 {
				t.Fatalf("upstream received %d request(s), want forwarded=%v", len(got), tt.wantFwd)
			}
			if tt.wantFwd && (got[0].Method != http.MethodGet || got[0].Header.Get("X-Http-Method-Override") != "") {
				t.Errorf("upstream got %s with override %q", got[0].Method, got[0].Header.Get("X-Http-Method-Override"))
			}
		})
	}
}
