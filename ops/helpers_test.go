package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/users"
)

const testToken = "ops-test-token-0123456789abcdef"

// testClock is an injected clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for the server's goroutines.
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

// auditUsers is the real user store with its audit events recorded, to show that ops only
// needs its own UserStore interface.
type auditUsers struct {
	*users.Store
	mu     sync.Mutex
	events []users.Event
}

func (a *auditUsers) Audit(e users.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
	a.Store.Audit(e)
}

func (a *auditUsers) Events() []users.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]users.Event(nil), a.events...)
}

// testEnv is an ops listener on httptest over the real Redis and Postgres.
type testEnv struct {
	clock    *testClock
	sessions *session.Store
	users    *auditUsers
	srv      *httptest.Server
	logs     *syncBuffer
}

// newTestEnv builds the stores on the test Redis and a fresh Postgres database, and serves
// the ops handler. edit may change the Options before New.
func newTestEnv(t *testing.T, edit func(*Options)) *testEnv {
	t.Helper()
	client, prefix := fixture.Redis(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	st, err := session.NewRedis(client, session.Options{
		Secrets: [][]byte{fixture.Secret()}, Secure: true, KeyPrefix: prefix, Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("session.NewRedis: %v", err)
	}
	ctx := context.Background()
	us, err := users.Open(ctx, users.Options{URL: fixture.Postgres(t)})
	if err != nil {
		t.Fatalf("users.Open: %v", err)
	}
	t.Cleanup(func() { _ = us.Close() })
	if err := us.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	e := &testEnv{clock: clock, sessions: st, users: &auditUsers{Store: us}, logs: &syncBuffer{}}
	opts := Options{
		Sessions: st, Users: e.users, Token: testToken, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ready:  map[string]func(context.Context) error{"redis": st.Ping, "database": us.Ping},
	}
	if edit != nil {
		edit(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// seedUser upserts a user as a login would.
func (e *testEnv) seedUser(t *testing.T, name string) users.User {
	t.Helper()
	u, err := e.users.Upsert(context.Background(), users.Profile{
		Issuer: "https://idp.example.com/", Subject: "sub-" + name, Email: name + "@example.com",
		EmailVerified: true, Name: "User " + name, Roles: []string{"viewer"}, Groups: []string{"staff"},
	})
	if err != nil {
		t.Fatalf("Upsert %s: %v", name, err)
	}
	return u
}

// seeded is one session made through the store, with everything the API must never show.
type seeded struct {
	rec    *session.Record
	cookie *http.Cookie
	id     string // raw session id
}

// browserUA is the user agent of seeded sessions: a browser's, which the store keeps
// compressed, so the API's answers prove it comes back exactly.
const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"

// seedSession logs u in (New, SetRecord, Save) with known token strings; sessions made later
// are newer.
func (e *testEnv) seedSession(t *testing.T, u users.User) seeded {
	t.Helper()
	e.clock.Advance(time.Second)
	rec := &session.Record{
		UserID: u.ID, Subject: u.Subject, Issuer: u.Issuer, Email: u.Email, EmailVerified: true,
		Name: u.Name, Roles: u.Roles, Groups: u.Groups, IdPSessionID: "sid-" + u.Subject,
		IDToken: "IDTOKEN-SECRET-" + u.Subject, AccessToken: "ACCESSTOKEN-SECRET-" + u.Subject,
		RefreshToken: "REFRESHTOKEN-SECRET-" + u.Subject, TokenExpiry: e.clock.Now().Add(time.Hour),
		IP: "192.0.2.7", UserAgent: browserUA,
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/.auth/callback", nil)
	sess, err := e.sessions.New(r, "")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	session.SetRecord(sess, rec)
	w := httptest.NewRecorder()
	if err := e.sessions.Save(r, w, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || rec.Handle == "" {
		t.Fatalf("Save: %d cookies, handle %q", len(cookies), rec.Handle)
	}
	return seeded{rec: rec, cookie: cookies[0], id: sess.ID}
}

// live reports whether the store still accepts the session's cookie.
func (e *testEnv) live(t *testing.T, s seeded) bool {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/x", nil)
	r.AddCookie(&http.Cookie{Name: s.cookie.Name, Value: s.cookie.Value})
	sess, err := e.sessions.Get(r, e.sessions.CookieName())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return !sess.IsNew && session.RecordFrom(sess) != nil
}

// response is one answer of the ops listener.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the ops listener; token "" sends no Authorization header.
func (e *testEnv) call(t *testing.T, method, path, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// decode unmarshals the body into v, failing the test on bad JSON.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// handles lists the handles of a /api/sessions answer.
func (r response) handles(t *testing.T) []string {
	t.Helper()
	var l struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	r.decode(t, &l)
	out := make([]string, 0, len(l.Sessions))
	for _, s := range l.Sessions {
		out = append(out, s.Handle)
	}
	return out
}

// countingObserver records what the API reports to its Observer.
type countingObserver struct {
	mu          sync.Mutex
	revocations map[string]int
	storeErrors map[string]int
}

func newCountingObserver() *countingObserver {
	return &countingObserver{revocations: map[string]int{}, storeErrors: map[string]int{}}
}

func (c *countingObserver) ObserveRevocation(reason string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revocations[reason] += n
}

func (c *countingObserver) ObserveStoreError(store string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storeErrors[store]++
}

func (c *countingObserver) counts() (revocations, storeErrors map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.revocations), maps.Clone(c.storeErrors)
}
