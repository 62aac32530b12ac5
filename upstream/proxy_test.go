package upstream

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// spoofHeaders are client-sent look-alikes of identity and forwarding headers
// (HDR-01, HDR-03, HDR-06, HDR-07, HDR-08, HDR-12, HDR-14, PATH-19).
const spoofHeaders = "X-Auth-User-Id: admin\r\n" +
	"x-auth-user-id: b\r\n" +
	"X-AUTH-USER-ID: c\r\n" +
	"X_Auth_User_Id: admin\r\n" +
	"x_auth_roles: admin\r\n" +
	"X-Auth_Roles: admin\r\n" +
	"X_AUTH_EMAIL: admin@corp.example\r\n" +
	"X-Auth-Identity: forged.jwt.value\r\n" +
	"X-Auth-Gateway-Route: admin\r\n" +
	"X_Forwarded_For: 127.0.0.1\r\n" +
	"X-Forwarded-For: 10.9.9.9\r\n" +
	"X-Forwarded-Host: evil.com\r\n" +
	"X-Forwarded-Proto: https\r\n" +
	"X-Forwarded-Port: 80\r\n" +
	"X-Forwarded-Uri: /admin/users\r\n" +
	"X-Forwarded-Prefix: /admin\r\n" +
	"X_Forwarded_Host: evil.com\r\n" +
	"X-Real-IP: 10.0.0.1\r\n" +
	"X_Real_Ip: 10.0.0.2\r\n" +
	"Forwarded: for=127.0.0.1;host=evil.com;proto=http\r\n" +
	"X-HTTP-Method-Override: DELETE\r\n" +
	"X-HTTP-Method: DELETE\r\n" +
	"X-Method-Override: DELETE\r\n" +
	"X_Http_Method_Override: DELETE\r\n" +
	"X-Original-URL: /admin/users\r\n" +
	"X-Original-URI: /admin/users\r\n" +
	"X-Rewrite-URL: /admin/users\r\n" +
	"X-Original-Host: evil.com\r\n" +
	"X-Host: evil.com\r\n" +
	"X-App: keep-me\r\n"

func TestProxyStripsSpoofedHeaders(t *testing.T) {
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "public", PathPrefix: "/public/", Target: mustURL(t, echo.URL)},
		{Name: "api", PathPrefix: "/api/", Target: mustURL(t, echo.URL)},
	}})
	tests := []struct {
		name         string
		path         string
		wantIdentity http.Header
	}{
		{name: "HDR-01/03 public route, nothing set", path: "/public/x"},
		{name: "HDR-02/03/14 authenticated route, only the gateway's values", path: "/api/me", wantIdentity: identityHeader()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawDo(t, hostOf(t, front.URL), "GET "+tt.path+" HTTP/1.1\r\nHost: gw.example.com\r\n"+
				spoofHeaders+"Connection: close\r\n\r\n")
			got := decodeEcho(t, res, body)
			identity := http.Header{}
			for k, v := range got.Header {
				if IsIdentityHeader(k) {
					identity[k] = v
				}
				if isDroppedHeader(k) && !IsIdentityHeader(k) && !isGatewayForwarded(k) {
					t.Errorf("upstream received %s: %q", k, v)
				}
			}
			want := tt.wantIdentity
			if want == nil {
				want = http.Header{}
			}
			if !reflect.DeepEqual(identity, want) {
				t.Errorf("identity headers = %v, want %v", identity, want)
			}
			if v := got.Header.Get("X-App"); v != "keep-me" {
				t.Errorf("X-App = %q, want keep-me (ordinary headers pass)", v)
			}
			if v := got.Header["X-Forwarded-For"]; len(v) != 1 || v[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q, want [127.0.0.1] from the untrusted peer", v)
			}
			if v := got.Header.Get("X-Forwarded-Host"); v != "gw.example.com" {
				t.Errorf("X-Forwarded-Host = %q, want gw.example.com", v)
			}
		})
	}
}

// isGatewayForwarded reports the X-Forwarded-* names the gateway itself sets.
func isGatewayForwarded(k string) bool {
	return k == "X-Forwarded-For" || k == "X-Forwarded-Proto" || k == "X-Forwarded-Host"
}

func TestProxyConnectionHeaderCannotDropOrForge(t *testing.T) {
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "public", PathPrefix: "/public/", Target: mustURL(t, echo.URL)},
		{Name: "api", PathPrefix: "/api/", Target: mustURL(t, echo.URL)},
	}})
	tests := []struct {
		name         string
		path         string
		wantIdentity string
	}{
		{name: "HDR-04/05 authenticated route keeps the gateway's headers", path: "/api/me", wantIdentity: "u-1"},
		{name: "public route forges nothing", path: "/public/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawDo(t, hostOf(t, front.URL), "GET "+tt.path+" HTTP/1.1\r\nHost: gw.example.com\r\n"+
				"Connection: close, X-Auth-User-Id, X-Auth-Roles, X-Forwarded-For, X-Forwarded-Proto, X-App\r\n"+
				"X-Auth-User-Id: forged\r\nX_Auth_User_Id: forged\r\nX-App: dropped-as-hop-by-hop\r\n\r\n")
			got := decodeEcho(t, res, body)
			if v := got.Header["X-Auth-User-Id"]; tt.wantIdentity == "" && len(v) != 0 ||
				tt.wantIdentity != "" && (len(v) != 1 || v[0] != tt.wantIdentity) {
				t.Errorf("X-Auth-User-Id = %q, want %q", v, tt.wantIdentity)
			}
			if tt.wantIdentity != "" && got.Header.Get("X-Auth-Roles") != "viewer" {
				t.Errorf("X-Auth-Roles = %q, want viewer", got.Header.Get("X-Auth-Roles"))
			}
			if v := got.Header["X_auth_user_id"]; len(v) != 0 {
				t.Errorf("underscore spelling reached the upstream: %q", v)
			}
			if got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("X-Forwarded-For/-Proto = %q/%q, want 127.0.0.1/http",
					got.Header.Get("X-Forwarded-For"), got.Header.Get("X-Forwarded-Proto"))
			}
			if v := got.Header.Get("X-App"); v != "" {
				t.Errorf("X-App = %q: Connection-listed headers must still be hop-by-hop", v)
			}
		})
	}
}

func TestProxyCookies(t *testing.T) {
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{{Name: "api", PathPrefix: "/", Target: mustURL(t, echo.URL)}}})
	tests := []struct {
		name    string
		cookies []string // one Cookie header line each
		want    []string // Cookie header lines the upstream receives
	}{
		{name: "HDR-10 gateway cookies removed, app cookies kept in order",
			cookies: []string{"__Host-authgate=secret; theme=dark; __Host-authgate-tx=abc; lang=en"},
			want:    []string{"theme=dark; lang=en"}},
		{name: "only gateway cookies: no Cookie header", cookies: []string{"__Host-authgate=secret"}},
		{name: "no gateway cookie: byte-for-byte", cookies: []string{"a=1;b=2;  c=\"q v\""},
			want: []string{"a=1;b=2;  c=\"q v\""}},
		{name: "several Cookie lines", cookies: []string{"a=1", "__Host-authgate=s; b=2"}, want: []string{"a=1", "b=2"}},
		{name: "duplicate and valueless gateway cookie", cookies: []string{"__Host-authgate=1; x=1; __Host-authgate; __Host-authgate=2"},
			want: []string{"x=1"}},
		{name: "look-alike names are app cookies", cookies: []string{"__host-authgate=1; __Host-authgateX=2"},
			want: []string{"__host-authgate=1; __Host-authgateX=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
			for _, c := range tt.cookies {
				req += "Cookie: " + c + "\r\n"
			}
			res, body := rawDo(t, hostOf(t, front.URL), req+"\r\n")
			got := decodeEcho(t, res, body)
			if g := got.Header["Cookie"]; !reflect.DeepEqual(g, tt.want) {
				t.Fatalf("upstream Cookie = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestProxyXForwarded(t *testing.T) {
	echo := newEcho(t)
	routes := []Route{{Name: "public", PathPrefix: "/", Target: mustURL(t, echo.URL)}}
	tests := []struct {
		name       string
		trusted    []string
		remoteAddr string
		tls        bool
		in         http.Header
		want       http.Header
	}{
		{name: "HDR-06/07 untrusted peer: replaced", trusted: []string{"10.0.0.0/8"}, remoteAddr: "203.0.113.7:4000",
			in:   http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.com"}},
			want: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example.com"}}},
		{name: "untrusted peer over TLS", remoteAddr: "203.0.113.7:4000", tls: true,
			want: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"gw.example.com"}}},
		{name: "trusted peer: kept and appended", trusted: []string{"10.0.0.0/8"}, remoteAddr: "10.1.2.3:4000",
			in: http.Header{"X-Forwarded-For": {"198.51.100.1, 198.51.100.2", "198.51.100.3"},
				"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}},
			want: http.Header{"X-Forwarded-For": {"198.51.100.1, 198.51.100.2, 198.51.100.3, 10.1.2.3"},
				"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}}},
		{name: "trusted peer without headers: own view", trusted: []string{"10.0.0.0/8"}, remoteAddr: "10.1.2.3:4000",
			want: http.Header{"X-Forwarded-For": {"10.1.2.3"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example.com"}}},
		{name: "IPv4-mapped IPv6 peer matches IPv4 prefix", trusted: []string{"10.0.0.0/8"}, remoteAddr: "[::ffff:10.1.2.3]:4000",
			in:   http.Header{"X-Forwarded-For": {"198.51.100.1"}},
			want: http.Header{"X-Forwarded-For": {"198.51.100.1, 10.1.2.3"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example.com"}}},
		{name: "IPv6 peer untrusted", trusted: []string{"10.0.0.0/8"}, remoteAddr: "[2001:db8::1]:4000",
			in:   http.Header{"X-Forwarded-For": {"10.1.1.1"}},
			want: http.Header{"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example.com"}}},
		{name: "unparsable peer: no X-Forwarded-For", trusted: []string{"0.0.0.0/0"}, remoteAddr: "pipe",
			in:   http.Header{"X-Forwarded-For": {"10.1.1.1"}, "X-Forwarded-Host": {"evil.com"}},
			want: http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, s := range tt.trusted {
				prefixes = append(prefixes, netip.MustParsePrefix(s))
			}
			p, err := New(Options{Routes: routes, TrustedProxies: prefixes})
			if err != nil {
				t.Fatal(err)
			}
			defer p.CloseIdleConnections()
			r := httptest.NewRequest(http.MethodGet, "http://gw.example.com/x", nil)
			r.RemoteAddr = tt.remoteAddr
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.in {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			p.Serve(w, r, 0, nil)
			got := decodeEcho(t, w.Result(), w.Body.Bytes())
			fwd := http.Header{}
			for k, v := range got.Header {
				if strings.HasPrefix(k, "X-Forwarded-") {
					fwd[k] = v
				}
			}
			if !reflect.DeepEqual(fwd, tt.want) {
				t.Fatalf("forwarding headers = %v, want %v", fwd, tt.want)
			}
		})
	}
}

func TestProxyURLRewrite(t *testing.T) {
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "app", PathPrefix: "/app/", Target: routeURL(t, echo, "/base"), StripPrefix: true},
		{Name: "bare", PathPrefix: "/bare", Target: routeURL(t, echo, ""), StripPrefix: true},
		{Name: "api", PathPrefix: "/api/", Target: routeURL(t, echo, "/")},
	}})
	echoHost := hostOf(t, echo.URL)
	tests := []struct {
		name, target          string
		wantPath, wantEscaped string
		wantQuery             string
	}{
		{name: "strip prefix onto base", target: "/app/x/y?a=1", wantPath: "/base/x/y", wantQuery: "a=1"},
		{name: "strip prefix case-folded", target: "/APP/x", wantPath: "/base/x"},
		{name: "strip prefix at the prefix itself", target: "/app", wantPath: "/base/"},
		{name: "strip prefix keeps trailing slash", target: "/app/x/", wantPath: "/base/x/"},
		{name: "strip bare prefix to root", target: "/bare", wantPath: "/"},
		{name: "strip bare prefix", target: "/bare/z", wantPath: "/z"},
		{name: "no strip", target: "/api/items", wantPath: "/api/items"},
		{name: "normalised path is forwarded", target: "/api/v1/../items//x/./", wantPath: "/api/items/x/"},
		{name: "PATH-16 unparsable query params dropped", target: "/api/items?role=user;role=admin&x=1",
			wantPath: "/api/items", wantQuery: "x=1"},
		{name: "ROB-23", target: "/api/x?a=1;b=2&c=3", wantPath: "/api/x", wantQuery: "c=3"},
		{name: "clean query byte-for-byte", target: "/api/q?b=%2F&a=x+y&a=2&z", wantPath: "/api/q",
			wantQuery: "b=%2F&a=x+y&a=2&z"},
		{name: "space re-escaped", target: "/api/a%20b", wantPath: "/api/a b", wantEscaped: "/api/a%20b"},
		{name: "PATH-07 decoded once, re-escaped", target: "/api/%252e%252e/admin",
			wantPath: "/api/%2e%2e/admin", wantEscaped: "/api/%252e%252e/admin"},
		{name: "UP-01 at sign stays in path", target: "/api/@evil.com/x", wantPath: "/api/@evil.com/x"},
		{name: "UP-01 URL in path stays in path", target: "/api/http://evil.com/x", wantPath: "/api/http:/evil.com/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawDo(t, hostOf(t, front.URL), "GET "+tt.target+" HTTP/1.1\r\nHost: gw.example.com\r\nConnection: close\r\n\r\n")
			got := decodeEcho(t, res, body)
			if got.Path != tt.wantPath || got.RawQuery != tt.wantQuery {
				t.Errorf("upstream path, query = %q, %q; want %q, %q", got.Path, got.RawQuery, tt.wantPath, tt.wantQuery)
			}
			if tt.wantEscaped != "" {
				if esc := (&url.URL{Path: got.Path, RawPath: got.RawPath}).EscapedPath(); esc != tt.wantEscaped {
					t.Errorf("upstream escaped path = %q, want %q", esc, tt.wantEscaped)
				}
			}
			if got.Host != echoHost {
				t.Errorf("upstream Host = %q, want %q (the target host)", got.Host, echoHost)
			}
		})
	}
}

func TestProxyUpgradeOtherThanWebSocketIsDropped(t *testing.T) {
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{{Name: "public", PathPrefix: "/", Target: mustURL(t, echo.URL)}}})
	res, body := rawDo(t, hostOf(t, front.URL), "GET /public/x HTTP/1.1\r\nHost: gw\r\n"+
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n")
	got := decodeEcho(t, res, body)
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := got.Header.Get(k); v != "" {
			t.Errorf("ROB-12: upstream received %s: %q", k, v)
		}
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{
		"X-Auth-User-Id": {"a"}, "X_auth_user_id": {"b"}, "X-Auth_roles": {"c"}, "x-auth-email": {"d"},
		"X-Authorization": {"keep"}, "Authorization": {"keep"}, "X-Auth": {"keep"}, "X-App": {"keep"},
	}
	StripIdentityHeaders(h)
	want := http.Header{"X-Authorization": {"keep"}, "Authorization": {"keep"}, "X-Auth": {"keep"}, "X-App": {"keep"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("after strip: %v, want %v", h, want)
	}
	for name, want := range map[string]bool{"X_AUTH_USER_ID": true, "x-auth-": true, "X-Auth-": true, "x-auth": false, "X-Authx": false} {
		if got := IsIdentityHeader(name); got != want {
			t.Errorf("IsIdentityHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestProxyRejectsBadRoutes(t *testing.T) {
	if _, err := New(Options{Routes: []Route{{Name: "x", PathPrefix: "/"}}}); err == nil {
		t.Fatal("New accepted a route without target")
	}
}
