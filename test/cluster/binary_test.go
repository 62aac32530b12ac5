package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// TestBinaryOnClusterAndSentinel builds the authgate binary and runs it the way an operator
// does: `check-config` accepts the Cluster and Sentinel forms of session.redis_url (and names
// the key of a broken one), and `serve` on each of them (the client cmd/authgate builds from
// the URL) logs a user in, proxies with the identity, lists the session in the ops API and
// ends it there.
func TestBinaryOnClusterAndSentinel(t *testing.T) {
	bin := fixture.BuildAuthgate(t)
	addrs := startCluster(t)
	sentinelAddr, master := fixture.StartRedisSentinel(t)
	clusterURL := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	sentinelURL := "redis://" + sentinelAddr + "?master_name=" + master

	t.Run("check-config", func(t *testing.T) {
		tests := []struct {
			name     string
			redisURL string
			wantOK   bool
		}{
			{name: "cluster", redisURL: clusterURL, wantOK: true},
			{name: "cluster, TLS and AUTH", redisURL: "rediss://user:pw@" + addrs[0] + "?addr=" + addrs[1] + "&dial_timeout=3s", wantOK: true},
			{name: "sentinel", redisURL: sentinelURL, wantOK: true},
			{name: "sentinel with more sentinels", redisURL: sentinelURL + "&addr=127.0.0.1:26380", wantOK: true},
			{name: "sentinel, empty master_name", redisURL: "redis://" + sentinelAddr + "?master_name="},
			{name: "cluster, unknown parameter", redisURL: "redis://user:pw@" + addrs[0] + "?addr=" + addrs[1] + "&colour=blue"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cfg := writeConfig(t, gatewayConfig{redisURL: tt.redisURL, publicURL: "http://127.0.0.1:8080",
					listen: "127.0.0.1:8080", issuer: "http://127.0.0.1:9999", upstream: "http://127.0.0.1:9998"})
				out, err := runBinary(t, bin, "check-config", "--config", cfg)
				if tt.wantOK {
					if err != nil || !strings.Contains(out, ": ok") {
						t.Fatalf("check-config refused %s: %v\n%s", tt.name, err, out)
					}
					return
				}
				if err == nil || !strings.Contains(out, "session.redis_url") {
					t.Fatalf("check-config accepted a broken URL or did not name the key: %v\n%s", err, out)
				}
				if strings.Contains(out, "pw@") {
					t.Errorf("the error repeats the URL: %s", out)
				}
			})
		}
	})
	for _, tc := range []struct{ name, redisURL string }{
		{name: "serve on the cluster", redisURL: clusterURL},
		{name: "serve on sentinel", redisURL: sentinelURL},
	} {
		t.Run(tc.name, func(t *testing.T) { testServe(t, bin, tc.redisURL) })
	}
}

// testServe runs `authgate serve` on redisURL and drives it as a browser and an operator.
func testServe(t *testing.T, bin, redisURL string) {
	op := fixture.StartOP(t)
	echo := fixture.StartEcho(t)
	ports := freePorts(t, 2)
	gwURL := "http://127.0.0.1:" + ports[0]
	opsURL := "http://127.0.0.1:" + ports[1]
	const token = "ops-token-for-the-cluster-test"
	cfg := writeConfig(t, gatewayConfig{redisURL: redisURL, publicURL: gwURL, listen: "127.0.0.1:" + ports[0],
		issuer: op.Issuer, clientSecret: op.ClientSecret, upstream: echo.URL,
		adminListen: "127.0.0.1:" + ports[1], adminToken: token})
	fixture.StartServe(t, bin, fixture.ServeOptions{Config: cfg, ReadyURL: opsURL + "/readyz"})

	client := (&fixture.Gateway{URL: gwURL}).Client()
	resp := fixture.LoginAt(t, client, gwURL, "/", "alice", "alice")
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp, body := fixture.Do(t, client, http.MethodGet, gwURL+"/dashboard", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied request: %d %s", resp.StatusCode, body)
	}
	got, _ := echo.Last()
	userID := got.Header.Get("X-Auth-User-Id")
	if userID == "" {
		t.Fatal("the upstream got no X-Auth-User-Id")
	}
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, q := range []string{"", "?user_id=" + userID} {
		resp, body := fixture.Do(t, http.DefaultClient, http.MethodGet, opsURL+"/api/sessions"+q, auth)
		var list struct {
			Sessions []struct {
				UserID string `json:"user_id"`
			} `json:"sessions"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil ||
			len(list.Sessions) != 1 || list.Sessions[0].UserID != userID {
			t.Fatalf("GET /api/sessions%s: %d %s, want the one session", q, resp.StatusCode, body)
		}
	}
	if resp, body := fixture.Do(t, http.DefaultClient, http.MethodDelete, opsURL+"/api/users/"+userID+"/sessions", auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke the user's sessions: %d %s", resp.StatusCode, body)
	}
	if resp, _ := fixture.Do(t, client, http.MethodGet, gwURL+"/dashboard", map[string]string{"Accept": "application/json"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the ops revocation: %d, want 401", resp.StatusCode)
	}
}

// runBinary runs bin with args (10s at most) and an environment without AUTHGATE_ variables,
// and returns its combined output.
func runBinary(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = fixture.CleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gatewayConfig is what writeConfig varies.
type gatewayConfig struct {
	redisURL, publicURL, listen, issuer, clientSecret, upstream, adminListen, adminToken string
}

// writeConfig writes a complete authgate.yaml for c into the test's temp directory.
func writeConfig(t *testing.T, c gatewayConfig) string {
	t.Helper()
	dir := t.TempDir()
	if c.clientSecret == "" {
		c.clientSecret = "client-secret"
	}
	body := fmt.Sprintf(`server:
  listen: %q
  public_url: %q
  log_level: warn
oidc:
  issuer: %q
  client_id: authgate
  client_secret: %q
session:
  store: redis
  redis_url: %q
  cookie_name: authgate
  secure: false
  secrets: [%q]
database:
  url: %q
  auto_migrate: true
routes:
  - name: app
    path_prefix: /
    upstream: %q
admin:
  listen: %q
  token: %q
`, c.listen, c.publicURL, c.issuer, c.clientSecret, c.redisURL,
		base64.StdEncoding.EncodeToString(fixture.Secret()), "sqlite:"+filepath.Join(dir, "users.db"),
		c.upstream, c.adminListen, c.adminToken)
	path := filepath.Join(dir, "authgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePorts returns n distinct free loopback ports, as strings.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		out = append(out, port)
	}
	return out
}
