package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/metrics"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// upstreamBody is the stub upstream's answer: 100 bytes.
const upstreamBody = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz!\n"

const (
	benchHost   = "app.bench.test"
	benchPath   = "/app/dashboard"
	cookieName  = "authgate"
	upstreamURL = "http://upstream.bench.test:9000"
)

// stubTransport answers every request with 200 and upstreamBody, without a socket. With
// identity set, a request without an X-Auth-User-Id of a SampleRecord gets 500, so a benchmark
// cannot measure a path that skipped the session or the identity headers.
type stubTransport struct{ identity bool }

func (s stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	status := http.StatusOK
	if s.identity && !strings.HasPrefix(r.Header.Get("X-Auth-User-Id"), UserIDPrefix) {
		status = http.StatusInternalServerError
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Length": {"100"}},
		Body:          io.NopCloser(strings.NewReader(upstreamBody)),
		ContentLength: int64(len(upstreamBody)), Request: r,
	}, nil
}

// discardWriter is a reusable ResponseWriter that keeps the status and the body length.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func newDiscardWriter() *discardWriter { return &discardWriter{h: make(http.Header, 8)} }

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discardWriter) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.n += len(b)
	return len(b), nil
}

// reset prepares d for the next request.
func (d *discardWriter) reset() {
	clear(d.h)
	d.status, d.n = 0, 0
}

// ok reports whether the last request got the upstream's 200 and its whole body.
func (d *discardWriter) ok() bool { return d.status == http.StatusOK && d.n == len(upstreamBody) }

// newRequest is an incoming browser GET as net/http's server builds it. Every benchmark
// builds one per iteration (the gateway rewrites the URL and headers), so its few
// allocations are in the bare baseline too.
func newRequest(cookie string) *http.Request {
	return &http.Request{
		Method: http.MethodGet, URL: &url.URL{Path: benchPath}, RequestURI: benchPath,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: benchHost, RemoteAddr: "127.0.0.1:50123",
		Header: http.Header{
			"Accept":     {"application/json"},
			"User-Agent": {"bench/1.0"},
			"Cookie":     {cookie},
		},
		Body: http.NoBody,
	}
}

// bareProxy is the baseline: httputil.ReverseProxy with Rewrite to the same upstream.
func bareProxy(tb testing.TB) http.Handler {
	tb.Helper()
	target, _ := url.Parse(upstreamURL)
	return BareProxy(target, stubTransport{}, nil)
}

// sessionStore says which session store a benchmark gateway uses.
type sessionStore int

const (
	storeMemory       sessionStore = iota
	storeRedisCache                // Redis with the default in-process cache (1s)
	storeRedisNoCache              // Redis, one GET per request
)

// benchGateway is a gateway wired like cmd/authgate's serve (JSON access log at info,
// Prometheus observer, SQLite users) holding one live session.
type benchGateway struct {
	handler   http.Handler
	store     *session.Store
	cookie    string        // "name=value" of the live session
	redisGets *atomic.Int64 // GET commands sent to Redis; nil for the memory store
	cacheOn   bool          // Redis with the in-process session cache
}

// newBenchGateway builds the gateway, one route "/" to the stubbed upstream, and logs a
// user in by saving a SampleRecord through the session store.
func newBenchGateway(tb testing.TB, store sessionStore) *benchGateway {
	tb.Helper()
	bg := &benchGateway{cacheOn: store == storeRedisCache}
	sopts := session.Options{CookieName: cookieName, Secure: false, Secrets: [][]byte{fixture.Secret()},
		IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}
	var (
		st  *session.Store
		err error
	)
	if store == storeMemory {
		st, err = session.NewMemory(sopts)
	} else {
		client, prefix := fixture.Redis(tb)
		bg.redisGets = new(atomic.Int64)
		client.AddHook(getCounter{n: bg.redisGets})
		sopts.KeyPrefix = prefix
		if store == storeRedisNoCache {
			sopts.CacheTTL = -1
		}
		st, err = session.NewRedis(client, sopts)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	us, err := users.Open(context.Background(), users.Options{URL: "sqlite:" + tb.TempDir() + "/users.db"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = us.Close() })
	rec := SampleRecord(0)
	bg.store = st
	bg.handler = newGatewayHandler(tb, st, us)
	bg.cookie = login(tb, st, rec)
	bg.warm(tb)
	return bg
}

func newGatewayHandler(tb testing.TB, st *session.Store, us *users.Store) http.Handler {
	tb.Helper()
	target, _ := url.Parse(upstreamURL)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	g, err := gateway.New(ctx, gateway.Options{
		PublicURL: "http://" + benchHost,
		OIDC: gateway.OIDCOptions{Issuer: "http://127.0.0.1:1/", ClientID: "authgate", ClientSecret: "unused",
			Scopes: []string{"openid", "profile", "email"}, RolesClaim: "roles", GroupsClaim: "groups"},
		CookieName: cookieName, SameSite: http.SameSiteLaxMode, Sessions: st, Users: us,
		// Timeout as config's routes[].timeout default. serve's built-in transports enforce it
		// as ResponseHeaderTimeout; with this stub transport Serve arms its own timer per
		// request, so the gateway here pays slightly more than in serve.
		Routes: []gateway.Route{{Route: upstream.Route{Name: "app", PathPrefix: "/", Target: target,
			Timeout: 30 * time.Second}}},
		UpstreamTransport: stubTransport{identity: true},
		// As serve wires it: the access lines go straight to the log writer.
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		AccessLog: io.Discard,
		Observer:  metrics.New(prometheus.NewRegistry()),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// login saves rec as a new session and returns its cookie as "name=value".
func login(tb testing.TB, st *session.Store, rec *session.Record) string {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://"+benchHost+"/.auth/callback", nil)
	sess, err := st.New(r, cookieName)
	if err != nil {
		tb.Fatal(err)
	}
	session.SetRecord(sess, rec)
	w := httptest.NewRecorder()
	if err := st.Save(r, w, sess); err != nil {
		tb.Fatal(err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		tb.Fatalf("Save set %d cookies, want 1", len(cs))
	}
	return cs[0].Name + "=" + cs[0].Value
}

// warm serves requests until the path is in its steady state: the request succeeds and, with
// the Redis cache, is served without a Redis GET (the invalidation subscription is up and
// the entry is filled). It fails after 3s.
func (bg *benchGateway) warm(tb testing.TB) {
	tb.Helper()
	w := newDiscardWriter()
	deadline := time.Now().Add(3 * time.Second)
	for {
		w.reset()
		before := bg.gets()
		bg.handler.ServeHTTP(w, newRequest(bg.cookie))
		if !w.ok() {
			tb.Fatalf("warm-up request: status %d, %d bytes", w.status, w.n)
		}
		if !bg.cacheOn || bg.gets() == before {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the session cache did not serve a request within 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (bg *benchGateway) gets() int64 {
	if bg.redisGets == nil {
		return 0
	}
	return bg.redisGets.Load()
}

// getCounter is a go-redis hook counting GET commands.
type getCounter struct{ n *atomic.Int64 }

func (getCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c getCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (getCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
