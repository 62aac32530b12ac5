package security

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/fixture"
)

// pathCase is a request aimed at /admin/ through a spelling the upstream could read
// differently from a naive matcher. reject: the gateway must refuse the request itself (400);
// otherwise it must match /admin/ on the normalised path clean, which alice's request must
// reach the upstream as.
type pathCase struct {
	name   string
	method string // default GET
	target string // "{gw}" is replaced by the gateway's host:port
	reject bool
	clean  string
}

func adminPathCases() []pathCase {
	return []pathCase{
		{name: "PATH-01 dot-dot encoded slash", target: "/public/..%2fadmin/users", reject: true},
		{name: "PATH-02 encoded dot-dot", target: "/public/%2e%2e/admin/users", clean: "/admin/users"},
		{name: "PATH-02 half-encoded dot-dot", target: "/public/.%2e/admin/users", clean: "/admin/users"},
		{name: "PATH-02 upper-case encoded dot-dot", target: "/public/%2E%2E/admin/users", clean: "/admin/users"},
		{name: "PATH-02 dot-dot above root", target: "/.%2e/.%2e/admin/users", reject: true},
		{name: "PATH-03 raw dot-dot", target: "/public/../admin/users", clean: "/admin/users"},
		{name: "PATH-03 through the auth prefix", target: "/.auth/../admin/users", clean: "/admin/users"},
		{name: "PATH-04 leading double slash", target: "//admin/users", clean: "/admin/users"},
		{name: "PATH-04 inner double slash", target: "/admin//users", clean: "/admin/users"},
		{name: "PATH-04 slashes and dot-dot", target: "//admin/../admin/users", clean: "/admin/users"},
		{name: "PATH-04 slashes, dot-dot and encoded slash", target: "///admin/../admin//%2Fusers", reject: true},
		{name: "PATH-05 encoded slash", target: "/admin%2Fusers", reject: true},
		{name: "PATH-05 lower-case encoded slash", target: "/admin%2fusers", reject: true},
		{name: "PATH-05 encoded traversal", target: "/public%2F..%2Fadmin", reject: true},
		{name: "PATH-06 dot-dot semicolon", target: "/public/..;/admin/users", reject: true},
		{name: "PATH-06 path parameter", target: "/admin;x=1/users", reject: true},
		{name: "PATH-06 semicolon segment", target: "/public;/../admin/users", reject: true},
		{name: "PATH-08 raw backslashes", target: `/public\..\admin`, reject: true},
		{name: "PATH-08 encoded backslashes", target: "/public%5C..%5Cadmin%5Cusers", reject: true},
		{name: "PATH-09 upper case", target: "/ADMIN/users", clean: "/ADMIN/users"},
		{name: "PATH-09 mixed case", target: "/Admin/users", clean: "/Admin/users"},
		{name: "PATH-10 bare prefix", target: "/admin", clean: "/admin"},
		{name: "PATH-10 trailing dot segment", target: "/admin/.", clean: "/admin/"},
		{name: "PATH-10 trailing slash", target: "/admin/users/", clean: "/admin/users/"},
		{name: "PATH-10 encoded tab", target: "/admin%09", reject: true},
		{name: "PATH-12 NUL then traversal", target: "/public/x%00/../../admin", reject: true},
		{name: "PATH-12 NUL extension", target: "/admin%00.png", reject: true},
		{name: "PATH-13 overlong UTF-8 dots", target: "/%C0%AE%C0%AE/admin", reject: true},
		{name: "PATH-14 encoded hash", target: "/public/secret%23/x", reject: true},
		{name: "PATH-14 raw hash then traversal", target: "/public/x#/../admin/users", reject: true},
		{name: "PATH-17 absolute-form", target: "http://{gw}/admin/users", clean: "/admin/users"},
		{name: "PATH-17 absolute-form other authority", target: "http://other.example/admin/users", clean: "/admin/users"},
		{name: "PATH-18 lower-case method", method: "get", target: "/admin/users", reject: true},
		{name: "PATH-18 mixed-case method", method: "GeT", target: "/admin/users", reject: true},
		{name: "PATH-18 unknown method", method: "FOO", target: "/admin/users", clean: "/admin/users"},
		{name: "PATH-20 HEAD", method: "HEAD", target: "/admin/users", clean: "/admin/users"},
		{name: "PATH-20 OPTIONS without preflight headers", method: "OPTIONS", target: "/admin/users", clean: "/admin/users"},
	}
}

// TestAdminPathNormalisation covers PATH-01..PATH-14, PATH-17, PATH-18, PATH-20: anonymously
// and as bob (viewer) every spelling of /admin/ is 400, 401 or 403, never forwarded; as alice
// it is 400 or forwarded as the same normalised path the policy was decided on.
func TestAdminPathNormalisation(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	_, bobCookie := loginAs(t, g, "bob")
	_, aliceCookie := loginAs(t, g, "alice")
	gwHost := strings.TrimPrefix(g.URL, "http://")
	users := []struct {
		name    string
		cookie  string
		wantHit int // status when the path is normalised to /admin/...
	}{
		{name: "anonymous", wantHit: http.StatusUnauthorized},
		{name: "bob", cookie: bobCookie, wantHit: http.StatusForbidden},
	}
	for _, u := range users {
		for _, tt := range adminPathCases() {
			t.Run(u.name+"/"+tt.name, func(t *testing.T) {
				r := rawReq{method: tt.method, target: strings.ReplaceAll(tt.target, "{gw}", gwHost),
					headers: []string{"Accept: application/json"}}
				if u.cookie != "" {
					r.headers = append(r.headers, u.cookie)
				}
				before := g.Echo.Count()
				resp, body := sendRaw(t, g.URL, r)
				want := u.wantHit
				if tt.reject {
					want = http.StatusBadRequest
				}
				if resp.StatusCode != want {
					t.Errorf("status %d, want %d (%s)", resp.StatusCode, want, body)
				}
				if n := g.Echo.Count() - before; n != 0 {
					t.Errorf("upstream received %d request(s): %+v", n, g.Echo.All()[before:])
				}
			})
		}
	}
	for _, rec := range g.Echo.All() {
		if underAdmin(rec.Path) || underAdmin(strings.SplitN(rec.RequestURI, "?", 2)[0]) {
			t.Errorf("upstream received %s %q (path %q) for a non-admin user", rec.Method, rec.RequestURI, rec.Path)
		}
	}

	for _, tt := range adminPathCases() {
		t.Run("alice/"+tt.name, func(t *testing.T) {
			r := rawReq{method: tt.method, target: strings.ReplaceAll(tt.target, "{gw}", gwHost),
				headers: []string{"Accept: application/json", aliceCookie}}
			before := g.Echo.Count()
			resp, body := sendRaw(t, g.URL, r)
			got := g.Echo.All()[before:]
			if tt.reject {
				if resp.StatusCode != http.StatusBadRequest || len(got) != 0 {
					t.Errorf("status %d with %d upstream request(s), want 400 and none (%s)", resp.StatusCode, len(got), body)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || len(got) != 1 {
				t.Fatalf("status %d with %d upstream request(s), want 200 and one (%s)", resp.StatusCode, len(got), body)
			}
			if got[0].Path != tt.clean || got[0].RawPath != "" {
				t.Errorf("upstream path %q (raw %q), want the normalised %q", got[0].Path, got[0].RawPath, tt.clean)
			}
		})
	}
}

// TestAnonymousNavigationToAdminRedirectsToLogin: a browser navigation through a traversal is
// sent to the login with the normalised path as return_to (DENY-ANON), not forwarded.
func TestAnonymousNavigationToAdminRedirectsToLogin(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	resp, _ := sendRaw(t, g.URL, rawReq{target: "/public/../admin/users?x=1", headers: []string{"Accept: text/html"}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.auth/login?return_to=%2Fadmin%2Fusers%3Fx%3D1" {
		t.Errorf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := g.Echo.Count(); n != 0 {
		t.Errorf("upstream received %d request(s)", n)
	}
}

// TestPublicPathsForwardedNormalised covers PATH-03 (positive), PATH-07, PATH-16/ROB-23 and
// UP-02: public requests reach the upstream as the one normalised path the route was matched
// on, decoded once, with only the query parameters the gateway parsed, at the configured target.
func TestPublicPathsForwardedNormalised(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	echoHost := strings.TrimPrefix(g.Echo.URL, "http://")
	tests := []struct {
		name      string
		target    string
		wantPath  string
		wantQuery string
	}{
		{name: "dot-dot back into public", target: "/public/../public/x", wantPath: "/public/x"},
		{name: "dot segment", target: "/public/./x", wantPath: "/public/x"},
		{name: "double slash", target: "/public//x", wantPath: "/public/x"},
		{name: "encoded letter", target: "/public/%78", wantPath: "/public/x"},
		{name: "PATH-07 double-encoded dots decoded once", target: "/public/%252e%252e/admin/users", wantPath: "/public/%2e%2e/admin/users"},
		{name: "PATH-07 double-encoded slash decoded once", target: "/public/..%252fadmin", wantPath: "/public/..%2fadmin"},
		{name: "PATH-16 semicolon query pair dropped", target: "/public/x?a=1;b=2&c=3", wantPath: "/public/x", wantQuery: "c=3"},
		{name: "UP-02 absolute-form metadata host", target: "http://169.254.169.254/public/x", wantPath: "/public/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.Echo.Count()
			resp, body := sendRaw(t, g.URL, rawReq{target: tt.target})
			got := g.Echo.All()[before:]
			if resp.StatusCode != http.StatusOK || len(got) != 1 {
				t.Fatalf("status %d with %d upstream request(s), want 200 and one (%s)", resp.StatusCode, len(got), body)
			}
			if got[0].Path != tt.wantPath || got[0].RawQuery != tt.wantQuery {
				t.Errorf("upstream got path %q query %q, want %q %q", got[0].Path, got[0].RawQuery, tt.wantPath, tt.wantQuery)
			}
			if got[0].Host != echoHost {
				t.Errorf("upstream Host %q, want the configured target %q", got[0].Host, echoHost)
			}
		})
	}
}

// TestPrefixMatchingIsSegmentAware covers PATH-11 and PATH-15: the public prefix never matches
// a longer segment, and a query never makes a protected path public.
func TestPrefixMatchingIsSegmentAware(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	tests := []struct {
		name   string
		target string
	}{
		{name: "PATH-11 longer segment", target: "/publicX/secret"},
		{name: "PATH-11 dash suffix", target: "/public-admin/x"},
		{name: "PATH-11 dot-dot in a longer segment", target: "/public..%2f..%2fadmin"},
		{name: "PATH-15 public path in the query", target: "/admin/users?path=/public/x"},
		{name: "PATH-15 public path after an encoded question mark", target: "/admin/users%3F/public/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.Echo.Count()
			resp, body := sendRaw(t, g.URL, rawReq{target: tt.target})
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 401 or 400 (%s)", resp.StatusCode, body)
			}
			if g.Echo.Count() != before {
				t.Errorf("forwarded anonymously")
			}
		})
	}
}
