package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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
	out  *syncBuffer
}

// syncBuffer collects the subprocess's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildAuthgate returns the authgate binary: $AUTHGATE_BIN, or one built from this tree
// (CGO_ENABLED=0 go build -trimpath, as .ci/run and the Dockerfile build it).
func buildAuthgate(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AUTHGATE_BIN"); p != "" {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go toolchain to build authgate (or set AUTHGATE_BIN): %v", err)
	}
	out := filepath.Join(t.TempDir(), "authgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The flags of .ci/run's static build, so that CI finds it in the build cache.
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "github.com/authgate/authgate/cmd/authgate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build authgate: %v\n%s", err, b)
	}
	return out
}

// startBinary runs `authgate serve` with a config written for the test: memory sessions, a
// SQLite user store, the devidp OP, /public/ (public) and / (authenticated) to an echo
// upstream. It is stopped with SIGTERM at cleanup.
func startBinary(t *testing.T) *binary {
	t.Helper()
	bin := buildAuthgate(t)
	b := &binary{Echo: fixture.StartEcho(t), OP: fixture.StartOP(t), out: &syncBuffer{}}
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
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "AUTHGATE_OIDC_CLIENT_SECRET="+b.OP.ClientSecret,
		"AUTHGATE_SESSION_SECRETS="+base64.StdEncoding.EncodeToString(fixture.Secret()))
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("authgate output:\n%s", b.out.String())
		}
	})
	if _, ok := waitFor(15*time.Second, func() bool {
		resp, err := http.Get(b.URL + "/.auth/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); !ok {
		t.Fatalf("authgate serve did not come up:\n%s", b.out.String())
	}
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
