package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/users"
	"github.com/redis/go-redis/v9"
)

func TestNewValidates(t *testing.T) {
	st, err := session.NewMemory(session.Options{Secrets: [][]byte{fixture.Secret()}, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	us, err := users.Open(context.Background(), users.Options{URL: "sqlite::memory:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = us.Close() })
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "ok", opts: Options{Sessions: st, Users: us, Token: testToken}},
		{name: "no sessions", opts: Options{Users: us, Token: testToken}, wantErr: "Sessions"},
		{name: "no users", opts: Options{Sessions: st, Token: testToken}, wantErr: "Users"},
		{name: "no token", opts: Options{Sessions: st, Users: us}, wantErr: "Token"},
		{name: "short token", opts: Options{Sessions: st, Users: us, Token: "short"}, wantErr: "Token"},
		{name: "nil check", opts: Options{Sessions: st, Users: us, Token: testToken,
			Ready: map[string]func(context.Context) error{"redis": nil}}, wantErr: "Ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	client, prefix := fixture.Redis(t)
	st, err := session.NewRedis(client, session.Options{Secrets: [][]byte{fixture.Secret()}, Secure: true, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	us, err := users.Open(ctx, users.Options{URL: fixture.Postgres(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = us.Close() })
	// Stores on ports where nothing listens: the real "down" answers.
	deadClient := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = deadClient.Close() })
	deadSessions, err := session.NewRedis(deadClient, session.Options{Secrets: [][]byte{fixture.Secret()}, Secure: true, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	deadUsers, err := users.Open(ctx, users.Options{URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deadUsers.Close() })

	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	ignoresCtx := make(chan struct{})
	t.Cleanup(func() { close(ignoresCtx) })
	// Both must run at the same time to pass: a sequential runner deadlocks into the timeout.
	var arrivedN atomic.Int32
	arrived := make(chan struct{})
	meet := func(ctx context.Context) error {
		if arrivedN.Add(1) == 2 {
			close(arrived)
		}
		select {
		case <-arrived:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	type checks = map[string]func(context.Context) error
	tests := []struct {
		name       string
		ready      checks
		query      string
		wantStatus int
		want       map[string]string
	}{
		{name: "all up", ready: checks{"redis": st.Ping, "database": us.Ping},
			wantStatus: 200, want: map[string]string{"redis": "ok", "database": "ok"}},
		{name: "redis down", ready: checks{"redis": deadSessions.Ping, "database": us.Ping},
			wantStatus: 503, want: map[string]string{"redis": "unavailable", "database": "ok"}},
		{name: "database down", ready: checks{"redis": st.Ping, "database": deadUsers.Ping},
			wantStatus: 503, want: map[string]string{"redis": "ok", "database": "unavailable"}},
		{name: "idp fails", ready: checks{"redis": st.Ping, "idp": func(context.Context) error { return errors.New("discovery: 500") }},
			wantStatus: 503, want: map[string]string{"redis": "ok", "idp": "unavailable"}},
		{name: "check times out", ready: checks{"idp": hang},
			wantStatus: 503, want: map[string]string{"idp": "unavailable"}},
		{name: "check ignores its context", ready: checks{"idp": func(context.Context) error { <-ignoresCtx; return nil }},
			wantStatus: 503, want: map[string]string{"idp": "unavailable"}},
		{name: "check panics", ready: checks{"idp": func(context.Context) error { panic("boom") }},
			wantStatus: 503, want: map[string]string{"idp": "unavailable"}},
		{name: "checks run in parallel", ready: checks{"a": meet, "b": meet},
			wantStatus: 200, want: map[string]string{"a": "ok", "b": "ok"}},
		{name: "no checks", ready: nil, wantStatus: 200, want: map[string]string{}},
		{name: "subset: database down but only redis asked", ready: checks{"redis": st.Ping, "database": deadUsers.Ping},
			query: "?check=redis", wantStatus: 200, want: map[string]string{"redis": "ok"}},
		{name: "subset naming the failing check", ready: checks{"redis": deadSessions.Ping, "database": us.Ping},
			query: "?check=redis", wantStatus: 503, want: map[string]string{"redis": "unavailable"}},
		{name: "unknown check name", ready: checks{"redis": st.Ping},
			query: "?check=nope", wantStatus: 400, want: map[string]string{"error": "unknown_check", "message": "No readiness check has this name."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newServer(Options{Sessions: st, Users: us, Token: testToken, Ready: tt.ready})
			if err != nil {
				t.Fatal(err)
			}
			s.readyTimeout = 500 * time.Millisecond
			w := httptest.NewRecorder()
			s.routes().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz"+tt.query, nil))
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tt.wantStatus || len(got) != len(tt.want) {
				t.Fatalf("status %d body %v, want %d %v", w.Code, got, tt.wantStatus, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestPlainEndpointsAndHeaders(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("authgate_requests_total 1\n"))
	})
	withMetrics := newTestEnv(t, func(o *Options) { o.Metrics = metrics })
	noMetrics := newTestEnv(t, nil)
	tests := []struct {
		name            string
		env             *testEnv
		path            string
		wantStatus      int
		wantContentType string
		wantInBody      string
	}{
		{name: "healthz", env: noMetrics, path: "/healthz", wantStatus: 200, wantContentType: "application/json", wantInBody: `"ok"`},
		{name: "metrics", env: withMetrics, path: "/metrics", wantStatus: 200, wantInBody: "authgate_requests_total 1"},
		{name: "no metrics", env: noMetrics, path: "/metrics", wantStatus: 404, wantContentType: "application/json"},
		{name: "page", env: noMetrics, path: "/", wantStatus: 200, wantContentType: "text/html; charset=utf-8", wantInBody: `id="search"`},
		{name: "script", env: noMetrics, path: "/ui/app.js", wantStatus: 200, wantContentType: "text/javascript; charset=utf-8", wantInBody: "sessionStorage"},
		{name: "style", env: noMetrics, path: "/ui/style.css", wantStatus: 200, wantContentType: "text/css; charset=utf-8"},
		{name: "unknown path", env: noMetrics, path: "/nope", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.env.call(t, http.MethodGet, tt.path, "", "")
			if res.status != tt.wantStatus || !strings.Contains(string(res.body), tt.wantInBody) {
				t.Fatalf("status %d body %.200s, want %d containing %q", res.status, res.body, tt.wantStatus, tt.wantInBody)
			}
			if tt.wantContentType != "" && res.header.Get("Content-Type") != tt.wantContentType {
				t.Errorf("Content-Type %q, want %q", res.header.Get("Content-Type"), tt.wantContentType)
			}
			for k, want := range map[string]string{
				"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			} {
				if got := res.header.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			csp := res.header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP %q allows inline or eval", csp)
			}
			if res.header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("ops listener sent CORS headers")
			}
		})
	}
}

// TestPageHasNoInlineCodeOrExternalAsset keeps the page within its CSP: script and style
// come from the listener itself, and no handler is written inline.
func TestPageHasNoInlineCodeOrExternalAsset(t *testing.T) {
	for _, name := range []string{"ui/index.html", "ui/app.js", "ui/style.css"} {
		b, err := uiFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		for _, re := range []string{`<script>`, `<script[^>]*>[^<]+</script>`, `<style`, `\son[a-z]+\s*=`, `https?://`, `style="`, `innerHTML`, `eval\(`} {
			if regexp.MustCompile(re).MatchString(page) {
				t.Errorf("%s matches %s", name, re)
			}
		}
	}
}
