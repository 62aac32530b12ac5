package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// Headers the load client sends so that the guard upstream can tell which session a request
// was sent with. They are not X-Auth-*, so the gateway passes them through.
const (
	hdrKind = "X-Test-Kind" // "live" only for a request carrying a live session's cookie
	hdrUser = "X-Test-User" // the user id of that session
)

// guard is an upstream that checks every request it receives: it must carry the identity
// headers of a live test session, the very session the client sent (hdrKind, hdrUser), and
// public routes must carry no identity at all. Anything else is a violation: a request let
// through without a valid session, or with someone else's identity. It keeps counters only, so
// it stays small under load.
type guard struct {
	URL string

	mu    sync.Mutex
	live  map[string]string // user id -> subject
	viol  []string          // the first violations, for the report
	nviol atomic.Int64
	ok    atomic.Int64
}

func startGuard(t *testing.T) *guard {
	t.Helper()
	g := &guard{live: map[string]string{}}
	srv := httptest.NewServer(g)
	g.URL = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if n := g.nviol.Load(); n > 0 {
			t.Errorf("%d requests reached the upstream without a live session's identity; first: %q", n, g.violations())
		}
	})
	return g
}

// allow registers a live session's identity.
func (g *guard) allow(userID, subject string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.live[userID] = subject
}

func (g *guard) violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.viol...)
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	if problem := g.check(r); problem != "" {
		g.nviol.Add(1)
		g.mu.Lock()
		if len(g.viol) < 10 {
			g.viol = append(g.viol, r.Method+" "+r.URL.Path+": "+problem)
		}
		g.mu.Unlock()
		http.Error(w, "guard: "+problem, http.StatusTeapot)
		return
	}
	g.ok.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"user\":%q}\n", r.Header.Get("X-Auth-User-Id"))
}

func (g *guard) check(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/public/") {
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-auth-") {
				return "identity header " + k + " on a public route"
			}
		}
		return ""
	}
	uid := r.Header.Get("X-Auth-User-Id")
	g.mu.Lock()
	sub, live := g.live[uid]
	g.mu.Unlock()
	switch {
	case uid == "":
		return "no X-Auth-User-Id"
	case r.Header.Get(hdrKind) != "live":
		return "sent as " + r.Header.Get(hdrKind) + ", reached the upstream as " + uid
	case !live:
		return "user " + uid + " has no live session"
	case r.Header.Get(hdrUser) != uid:
		return "session of " + r.Header.Get(hdrUser) + " arrived as " + uid
	case r.Header.Get("X-Auth-Subject") != sub:
		return "subject " + r.Header.Get("X-Auth-Subject") + " for " + uid
	case len(r.Header.Values("X-Auth-User-Id")) != 1:
		return "several X-Auth-User-Id headers"
	}
	return ""
}

// logCounter is a slog handler that counts records at warn and above, so a test can assert
// that a fault was logged without printing thousands of lines.
type logCounter struct {
	n    atomic.Int64
	mu   sync.Mutex
	msgs map[string]int
}

func newLogCounter() *logCounter { return &logCounter{msgs: map[string]int{}} }

func (c *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler           { return c }
func (c *logCounter) WithGroup(string) slog.Handler                { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.n.Add(1)
	code := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "code" {
			code = a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	c.msgs[r.Message+" "+code]++
	c.mu.Unlock()
	return nil
}

// count is how many records had this message (and code attribute, "" when none).
func (c *logCounter) count(msg, code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[msg+" "+code]
}

// rigOptions configures startRig. Zero fields use the fixture's defaults.
type rigOptions struct {
	store  *session.Store // the session store; nil: the fixture's (shared Redis, own prefix)
	users  *users.Store   // the user store; nil: the fixture's SQLite
	issuer string         // the OP; "" starts a fresh devidp
	secret string
	routes []gateway.Route // Target nil means the guard
	mutate func(*gateway.Options)
}

// rig is a running gateway wired from the real packages, the guard upstream behind it and the
// session store it really uses.
type rig struct {
	*fixture.Gateway
	store *session.Store
	guard *guard
	logs  *logCounter
}

// faultRoutes: /public/ (public), /admin/ (role super_admin), / (authenticated).
func faultRoutes() []gateway.Route {
	return []gateway.Route{
		{Route: upstream.Route{Name: "public", PathPrefix: "/public/"}, Access: gateway.Policy{Public: true}},
		{Route: upstream.Route{Name: "admin", PathPrefix: "/admin/"}, Access: gateway.Policy{Roles: []string{"super_admin"}}},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}
}

func startRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	rg := &rig{guard: startGuard(t), logs: newLogCounter()}
	routes := o.routes
	if routes == nil {
		routes = faultRoutes()
	}
	target, _ := url.Parse(rg.guard.URL)
	for i := range routes {
		if routes[i].Target == nil {
			routes[i].Target = target
		}
	}
	rg.Gateway = fixture.StartGateway(t, fixture.GatewayOptions{
		Routes: routes, MemorySessions: o.store != nil, Issuer: o.issuer, ClientSecret: o.secret,
		Mutate: func(opts *gateway.Options) {
			if o.store != nil {
				opts.Sessions = o.store
			}
			if o.users != nil {
				opts.Users = o.users
			}
			opts.Logger = slog.New(rg.logs)
			if o.mutate != nil {
				o.mutate(opts)
			}
		},
	})
	rg.store = rg.Sessions
	if o.store != nil {
		rg.store = o.store
	}
	return rg
}

// redisStore is a session store on its own go-redis client for addr (timeouts as
// cmd/authgate), under a fresh key prefix; both are closed at cleanup.
func redisStore(t *testing.T, addr, prefix string) *session.Store {
	t.Helper()
	client := fixture.NewRedisClient(addr)
	return storeOn(t, client, prefix)
}

func storeOn(t *testing.T, client redis.UniversalClient, prefix string) *session.Store {
	t.Helper()
	st, err := session.NewRedis(client, session.Options{CookieName: fixture.CookieName,
		SameSite: http.SameSiteLaxMode, Secrets: [][]byte{fixture.Secret()}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(); _ = client.Close() })
	return st
}

// testSession is a session made for a test, with the cookie that carries it.
type testSession struct {
	user, subject, handle string
	cookie                *http.Cookie
	rec                   *session.Record // as minted (nil for a session from a real login)
}

// mint creates n sessions directly in the store (users <prefix>-000...), registered in the
// guard as live.
func (rg *rig) mint(t *testing.T, prefix string, n int) []testSession {
	t.Helper()
	out := make([]testSession, n)
	for i := range out {
		out[i] = mintOne(t, rg.store, fmt.Sprintf("%s-%03d", prefix, i))
		rg.guard.allow(out[i].user, out[i].subject)
	}
	return out
}

// mintRevoked creates n sessions and revokes them: their cookies are signed and well formed
// but must never be let through.
func (rg *rig) mintRevoked(t *testing.T, prefix string, n int) []testSession {
	t.Helper()
	out := make([]testSession, n)
	for i := range out {
		out[i] = mintOne(t, rg.store, fmt.Sprintf("%s-%03d", prefix, i))
		if err := rg.store.Revoke(context.Background(), out[i].handle); err != nil {
			t.Fatalf("revoke: %v", err)
		}
	}
	return out
}

func mintOne(t *testing.T, st *session.Store, user string) testSession {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	s, err := st.New(req, fixture.CookieName)
	if err != nil {
		t.Fatal(err)
	}
	rec := &session.Record{UserID: user, Subject: "sub-" + user, Issuer: "https://idp.faults.test",
		Email: user + "@faults.test", EmailVerified: true, Name: "User " + user, Roles: []string{"staff"}}
	session.SetRecord(s, rec)
	if err := st.Save(req, w, s); err != nil {
		t.Fatalf("save session: %v", err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == fixture.CookieName && c.Value != "" {
			return testSession{user: user, subject: rec.Subject, handle: rec.Handle, cookie: c, rec: rec}
		}
	}
	t.Fatal("no session cookie from Save")
	return testSession{}
}

// loginUser logs a fresh client in through the OP and registers the session's identity in
// the guard. It returns the client (cookie jar) and the user id.
func (rg *rig) loginUser(t *testing.T, user string) (*http.Client, string) {
	t.Helper()
	c := rg.Client()
	resp := rg.Login(t, c, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	me := meOf(t, c, rg.URL)
	rg.guard.allow(me.UserID, me.Sub)
	return c, me.UserID
}

// cookieOf returns the session cookie a client holds for the gateway.
func (rg *rig) cookieOf(t *testing.T, c *http.Client) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(rg.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == fixture.CookieName {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	t.Fatal("client holds no session cookie")
	return nil
}

// waitFor polls cond every 20ms until it holds or d passes; it returns how long it took and
// whether it held.
func waitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
