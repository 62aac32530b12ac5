package forwardauth

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
)

// nginxBinary finds nginx, or skips the test (fails it when CI is set).
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed (apt-get install nginx-light)")
	}
	t.Skip("nginx is not installed")
	return ""
}

// startNginx runs nginx in the foreground with testdata/nginx.conf.tmpl, in front of app with
// gatewayURL as its auth_request service, and returns its base URL. It is stopped at cleanup.
func startNginx(t *testing.T, gatewayURL, appURL string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	err = tmpl.Execute(&conf, map[string]any{"Dir": dir, "Root": os.Geteuid() == 0, "Listen": listen,
		"Gateway": strings.TrimPrefix(gatewayURL, "http://"), "App": strings.TrimPrefix(appURL, "http://"),
		"Cookie": fixture.CookieName})
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), log)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("nginx exited: %v\n%s", err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + listen
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nginx did not listen on %s\n%s", listen, out.String())
	return ""
}

func TestNginxAuthRequest(t *testing.T) {
	nginxBinary(t)
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	app := fixture.StartEcho(t)
	base := startNginx(t, g.URL, app.URL)
	alice, bob := sessionCookie(t, g, "alice"), sessionCookie(t, g, "bob")
	aliceID := func() string {
		resp, body := do(t, http.MethodGet, g.URL+"/.auth/me", map[string]string{"Cookie": alice})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/.auth/me: %d", resp.StatusCode)
		}
		return jsonField(body, "user_id")
	}()
	spoofed := map[string]string{
		"X-Auth-User-Id": "spoofed", "X_Auth_User_Id": "spoofed", "x_auth_roles": "super_admin",
		"X-Auth_Roles": "super_admin", "X-Auth-Identity": "forged.jwt.value", "X-Auth-Email": "mallory@example.com",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name         string
		method, path string
		hdr          map[string]string
		want         int
		wantLocation string
		wantUpstream map[string]string // headers the app must see ("" = absent); nil: app not reached
	}{
		{name: "anonymous API call", method: "GET", path: "/api/things", hdr: map[string]string{"Accept": "application/json"}, want: 401},
		{name: "anonymous browser", method: "GET", path: "/dash?tab=1&x=2", hdr: map[string]string{"Accept": "text/html"},
			want: 302, wantLocation: "/.auth/login?return_to=%2Fdash%3Ftab%3D1%26x%3D2"},
		{name: "anonymous form POST", method: "POST", path: "/dash", hdr: map[string]string{"Accept": "text/html"}, want: 401},
		{name: "alice with spoofed headers", method: "GET", path: "/dash",
			hdr: with(spoofed, "Cookie", "theme=dark; "+alice+"; lang=en", "Authorization", "Basic dXNlcjpwYXNz"), want: 200,
			wantUpstream: map[string]string{"X-Auth-User-Id": aliceID, "X-Auth-Email": "alice@example.com",
				"X-Auth-Identity": "", "Authorization": "", "Cookie": "theme=dark; lang=en"}},
		{name: "alice, session cookie first", method: "GET", path: "/dash", hdr: map[string]string{"Cookie": alice + "; theme=dark"},
			want: 200, wantUpstream: map[string]string{"X-Auth-User-Id": aliceID, "Cookie": "theme=dark"}},
		{name: "alice POST with X-CSRF", method: "POST", path: "/api/things", hdr: map[string]string{"Cookie": alice, "X-CSRF": "1"},
			want: 200, wantUpstream: map[string]string{"X-Auth-User-Id": aliceID, "Cookie": ""}},
		{name: "alice POST without X-CSRF", method: "POST", path: "/api/things", hdr: map[string]string{"Cookie": alice}, want: 403},
		{name: "alice on admin", method: "GET", path: "/admin/users", hdr: with(spoofed, "Cookie", alice), want: 200,
			wantUpstream: map[string]string{"X-Auth-User-Id": aliceID}},
		{name: "bob on admin", method: "GET", path: "/admin/users", hdr: with(spoofed, "Cookie", bob), want: 403},
		{name: "bob on admin via dot segments", method: "GET", path: "/public/%2e%2e/admin/users", hdr: map[string]string{"Cookie": bob}, want: 403},
		{name: "anonymous on public with spoofed headers", method: "GET", path: "/public/page", hdr: spoofed, want: 200,
			wantUpstream: map[string]string{"X-Auth-User-Id": "", "X-Auth-Email": ""}},
		{name: "check endpoint not reachable from outside", method: "GET", path: "/.auth/check",
			hdr: map[string]string{"X-Original-URI": "/public/x", "X-Original-Method": "GET"}, want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := app.Count()
			resp, body := do(t, tt.method, base+tt.path, tt.hdr)
			if resp.StatusCode != tt.want || resp.Header.Get("Location") != tt.wantLocation {
				t.Fatalf("got %d Location %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("Location"), tt.want, tt.wantLocation, body)
			}
			if tt.wantUpstream == nil {
				if app.Count() != before {
					t.Fatal("a refused request reached the app")
				}
				return
			}
			got, ok := app.Last()
			if !ok || app.Count() != before+1 {
				t.Fatal("the app did not get the request")
			}
			for name := range got.Header {
				if strings.Contains(name, "_") {
					t.Errorf("the app got a header with an underscore: %s", name)
				}
			}
			for name, want := range tt.wantUpstream {
				if v := strings.Join(got.Header.Values(name), ", "); v != want {
					t.Errorf("app got %s = %q, want %q", name, v, want)
				}
			}
			if v := got.Header.Values("X-Auth-User-Id"); len(v) > 1 {
				t.Errorf("X-Auth-User-Id sent %d times", len(v))
			}
		})
	}
	if alice == "" || bob == "" || aliceID == "" {
		t.Fatal("logins did not yield sessions")
	}
}

func TestNginxBearer(t *testing.T) {
	nginxBinary(t)
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	app := fixture.StartEcho(t)
	base := startNginx(t, e.g.URL, app.URL)
	admin := e.token(func(c map[string]any) { c["roles"] = []string{"super_admin"} }, "RS256")
	tests := []struct {
		name, path, token string
		want              int
		wantChallenge     string
	}{
		{name: "valid token", path: "/api/x", token: e.token(nil, "RS256"), want: 200},
		{name: "valid token with role on admin", path: "/admin/x", token: admin, want: 200},
		{name: "valid token without role on admin", path: "/admin/x", token: e.token(nil, "RS256"), want: 403},
		{name: "HS256 key confusion", path: "/api/x", token: e.token(nil, "HS256"), want: 401, wantChallenge: `Bearer error="invalid_token", error_description="unsupported algorithm"`},
		{name: "garbage", path: "/api/x", token: "garbage", want: 401, wantChallenge: `Bearer error="invalid_token", error_description="malformed token"`},
		{name: "no token", path: "/api/x", want: 401, wantChallenge: `Bearer realm="authgate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := app.Count()
			hdr := map[string]string{"Accept": "application/json", "X-Auth-Subject": "spoofed"}
			if tt.token != "" {
				hdr["Authorization"], hdr["Accept"] = "Bearer "+tt.token, "text/html" // a bearer caller is never redirected
			}
			resp, body := do(t, http.MethodGet, base+tt.path, hdr)
			if resp.StatusCode != tt.want || strings.Join(resp.Header.Values("WWW-Authenticate"), " | ") != tt.wantChallenge {
				t.Fatalf("got %d %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tt.want, tt.wantChallenge, body)
			}
			if tt.want != http.StatusOK {
				if app.Count() != before {
					t.Fatal("a refused request reached the app")
				}
				return
			}
			got, _ := app.Last()
			if got.Header.Get("X-Auth-Subject") != "crafted-subject" || got.Header.Get("X-Auth-User-Id") != "" ||
				got.Header.Get("Authorization") != "" {
				t.Fatalf("app headers: %v", got.Header)
			}
		})
	}
}
