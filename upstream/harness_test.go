package upstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoed is what the echo upstream reports about the request it received.
type echoed struct {
	Method, Path, RawPath, RawQuery, Host, RemoteAddr string
	Header                                            http.Header
}

// newEcho starts an upstream that answers every request with the request it received, as JSON.
func newEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
			Host: r.Host, RemoteAddr: r.RemoteAddr, Header: r.Header,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// gatewayCookie is the test's stand-in for GatewayCookies.
func gatewayCookie(name string) bool {
	return name == "__Host-authgate" || name == "__Host-authgate-tx"
}

// identitySet is the identity header set the fake gateway adds on routes named "api*".
func identitySet() []Field {
	return []Field{{"X-Auth-User-Id", "u-1"}, {"X-Auth-Subject", "sub-1"}, {"X-Auth-Roles", "viewer"}}
}

// identityHeader is identitySet as the upstream receives it.
func identityHeader() http.Header {
	h := http.Header{}
	for _, f := range identitySet() {
		h[f.Name] = []string{f.Value}
	}
	return h
}

// frontFor mimics package gateway's request path: normalise once, match, Serve. Routes whose
// name starts with "api" get identitySet(); the others are public (set nil).
func frontFor(t *testing.T, p *Proxy) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clean, err := NormalizePath(r.URL.EscapedPath())
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		r.URL.Path, r.URL.RawPath = clean, ""
		i := p.table.Match(r.Host, clean)
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		var set []Field
		if strings.HasPrefix(p.table.Route(i).Name, "api") {
			set = identitySet()
		}
		p.Serve(w, r, i, set)
	})
}

// newFront starts the fake gateway in front of a Proxy built from opts.
func newFront(t *testing.T, opts Options) (*httptest.Server, *Proxy) {
	t.Helper()
	if opts.GatewayCookies == nil {
		opts.GatewayCookies = gatewayCookie
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.CloseIdleConnections)
	front := httptest.NewServer(frontFor(t, p))
	t.Cleanup(front.Close)
	return front, p
}

// rawDo sends one raw HTTP/1.1 request (header lines verbatim) and returns the response
// with its body read.
func rawDo(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("ReadResponse: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func decodeEcho(t *testing.T, res *http.Response, body []byte) echoed {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", res.StatusCode, body)
	}
	var e echoed
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decode echo %q: %v", body, err)
	}
	return e
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	return mustURL(t, rawURL).Host
}

// logBuffer is a concurrency-safe slog sink for asserting on log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeClock replaces Proxy.after: each armed timer is sent on armed so the test fires it.
type fakeClock struct{ armed chan func() }

func newFakeClock() *fakeClock { return &fakeClock{armed: make(chan func(), 8)} }

func (c *fakeClock) after(_ time.Duration, f func()) func() bool {
	c.armed <- f
	return func() bool { return true }
}

// next waits for the next armed timer; the bound only keeps a broken build from hanging.
func (c *fakeClock) next(t *testing.T) func() {
	t.Helper()
	select {
	case f := <-c.armed:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was armed")
		return nil
	}
}

func routeURL(t *testing.T, srv *httptest.Server, base string) *url.URL {
	t.Helper()
	return mustURL(t, srv.URL+base)
}
