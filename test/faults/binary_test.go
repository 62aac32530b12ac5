package faults

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// binary is a running `authgate serve` subprocess: the real http.Server with the limits of
// cmd/authgate (ReadHeaderTimeout, MaxHeaderBytes...), in front of an echo upstream.
type binary struct {
	URL  string
	Addr string
	Echo *fixture.Echo
	OP   *fixture.OP
}

// startBinary runs `authgate serve` with a config written for the test: memory sessions, a
// SQLite user store, the devidp OP, /public/ (public) and / (authenticated) to an echo
// upstream. It is stopped with SIGTERM at cleanup.
func startBinary(t *testing.T) *binary {
	t.Helper()
	bin := fixture.BuildAuthgate(t)
	b := &binary{Echo: fixture.StartEcho(t), OP: fixture.StartOP(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	ln.Close()
	b.URL = "http://" + b.Addr
	dir := t.TempDir()
	cfg := fmt.Sprintf(`server:
  listen: %q
  public_url: %q
  log_level: warn
  shutdown_grace: 1s
oidc:
  issuer: %q
  client_id: authgate
session:
  store: memory
  cookie_name: %s
  secure: false
database:
  url: "sqlite:%s/users.db"
  auto_migrate: true
routes:
  - {name: public, path_prefix: "/public/", upstream: %q, access: public}
  - {name: app, path_prefix: "/", upstream: %q}
admin:
  listen: ""
`, b.Addr, b.URL, b.OP.Issuer, fixture.CookieName, dir, b.Echo.URL, b.Echo.URL)
	path := filepath.Join(dir, "authgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fixture.StartServe(t, bin, fixture.ServeOptions{Config: path, ReadyURL: b.URL + "/.auth/healthz",
		StopGrace: 5 * time.Second, Env: append(fixture.CleanEnv(), "AUTHGATE_OIDC_CLIENT_SECRET="+b.OP.ClientSecret,
			"AUTHGATE_SESSION_SECRETS="+base64.StdEncoding.EncodeToString(fixture.Secret()))})
	return b
}

// login logs a fresh client in through the binary and the OP.
func (b *binary) login(t *testing.T, user string) *http.Client {
	t.Helper()
	g := &fixture.Gateway{URL: b.URL}
	c := g.Client()
	resp := g.Login(t, c, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login through the binary: %d", resp.StatusCode)
	}
	return c
}

// sessionCookieOf returns the session cookie c holds for the binary.
func (b *binary) sessionCookieOf(t *testing.T, c *http.Client) *http.Cookie {
	t.Helper()
	u, _ := http.NewRequest(http.MethodGet, b.URL, nil)
	for _, ck := range c.Jar.Cookies(u.URL) {
		if ck.Name == fixture.CookieName {
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// rawRequest writes raw to a new connection and returns the status line's code (0 when the
// server closed the connection without an answer).
func rawRequest(t *testing.T, addr string, raw []byte) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		t.Logf("write: %v (the server may close early)", err)
	}
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	if n < 12 || !bytes.HasPrefix(buf, []byte("HTTP/1.1 ")) {
		return 0
	}
	code, _ := strconv.Atoi(string(buf[9:12]))
	return code
}
