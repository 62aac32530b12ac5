package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// lockedBuffer collects a subprocess's stderr safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is an `authgate serve` subprocess.
type served struct {
	URL, OpsURL string
	cmd         *exec.Cmd
	done        chan error
	stderr      *lockedBuffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe writes a configuration and runs the real binary with it.
func startServe(t *testing.T, redisURL, dbURL string, op *fixture.OP, upstreamURL string) *served {
	t.Helper()
	addr, opsAddr := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`server:
  listen: %q
  public_url: "http://%s"
  shutdown_grace: 5s
oidc:
  issuer: %q
  client_id: %q
session:
  redis_url: %q
  cookie_name: authgate
  secure: false
database:
  url: %q
routes:
  - name: app
    path_prefix: /
    upstream: %q
admin:
  listen: %q
`, addr, addr, op.Issuer, op.ClientID, redisURL, dbURL, upstreamURL, opsAddr)
	path := filepath.Join(t.TempDir(), "authgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &served{URL: "http://" + addr, OpsURL: "http://" + opsAddr, done: make(chan error, 1), stderr: &lockedBuffer{}}
	s.cmd = exec.Command(binPath, "serve", "--config", path)
	s.cmd.Env = append(os.Environ(),
		"AUTHGATE_OIDC_CLIENT_SECRET="+op.ClientSecret,
		"AUTHGATE_SESSION_SECRETS="+randomSecret(),
		"AUTHGATE_ADMIN_TOKEN=ops-token-0123456789abcdef",
	)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.URL + "/.auth/healthz"); err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("authgate serve did not start:\n%s", s.stderr.String())
		}
	}
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeOpsMetricsReadinessShutdown runs `authgate serve` against a private Redis, the
// machine's Postgres and a devidp OP: after traffic the metrics count it; /readyz names Redis
// while it is down (and requests get 503, never let through) and recovers when it returns;
// SIGTERM lets a slow in-flight request finish, refuses new connections, and exits 0.
func TestServeOpsMetricsReadinessShutdown(t *testing.T) {
	rs := fixture.StartRedisServer(t, fixture.RedisServerOptions{Persistent: true})
	op := fixture.StartOP(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Auth-Subject"))
	}))
	t.Cleanup(upstream.Close)
	s := startServe(t, rs.URL(), fixture.Postgres(t), op, upstream.URL)

	client := (&fixture.Gateway{}).Client()
	resp := fixture.LoginAt(t, client, s.URL, "/", "alice", "alice")
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d\n%s", resp.StatusCode, s.stderr.String())
	}
	for i := 0; i < 3; i++ {
		if code, body := httpGet(t, client, s.URL+"/x"); code != http.StatusOK || body != "hello user-alice" {
			t.Fatalf("proxied request: %d %q", code, body)
		}
	}

	_, metrics := httpGet(t, http.DefaultClient, s.OpsURL+"/metrics")
	for _, want := range []string{
		`authgate_requests_total{code="2xx",route="app"} 3`,
		`authgate_logins_total{result="success"} 1`,
		`authgate_request_duration_seconds_count{route="app"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	if code, body := httpGet(t, http.DefaultClient, s.OpsURL+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz %d %s", code, body)
	}
	rs.Stop()
	code, body := httpGet(t, http.DefaultClient, s.OpsURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis":"unavailable"`) {
		t.Errorf("readyz with Redis down: %d %s", code, body)
	}
	if code, _ := httpGet(t, client, s.URL+"/x"); code != http.StatusServiceUnavailable {
		t.Errorf("request with Redis down: %d, want 503", code)
	}
	rs.Start()
	recovered := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, _ := httpGet(t, http.DefaultClient, s.OpsURL+"/readyz"); code == http.StatusOK {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Fatal("readyz did not recover after Redis returned")
	}
	if code, body := httpGet(t, client, s.URL+"/x"); code != http.StatusOK {
		t.Errorf("the session did not work again after Redis returned: %d %s", code, body)
	}

	// SIGTERM with a slow request in flight.
	slow := make(chan int, 1)
	go func() {
		resp, err := client.Get(s.URL + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the upstream
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("new connections are still accepted during shutdown")
	}
	if got := <-slow; got != http.StatusOK {
		t.Errorf("in-flight request finished with %d, want 200", got)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("authgate did not exit after SIGTERM")
	}

	// The logs are JSON lines with an access line per request and no secret in them.
	logs := s.stderr.String()
	if !regexp.MustCompile(`"msg":"request".*"route":"app".*"status":200`).MatchString(logs) {
		t.Errorf("no access log line for the app route in:\n%s", logs)
	}
	for _, c := range client.Jar.Cookies(mustURL(t, s.URL)) {
		if strings.Contains(logs, c.Value) {
			t.Errorf("cookie %s value appears in the logs", c.Name)
		}
	}
	if strings.Contains(logs, op.ClientSecret) {
		t.Error("the client secret appears in the logs")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
