package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
)

const redisAddr = "127.0.0.1:6379"

// Test secrets: A is the usual one, B the one rotated in.
func secretA() []byte { return bytes.Repeat([]byte("a"), 32) }
func secretB() []byte { return bytes.Repeat([]byte("b"), 40) }

// testClock is an injected clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

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

// env is one backend under test: every store made by newStore shares it (and its key prefix).
type env struct {
	name   string
	clock  *testClock
	b      backend
	client *redis.Client // nil for memory
	prefix string
}

// eachBackend runs fn once against the memory backend and once against the real Redis.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		clock := newClock()
		fn(t, &env{name: "memory", clock: clock, b: newMemBackend(clock.Now), prefix: "t:"})
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := redisForTest(t)
		fn(t, &env{name: "redis", clock: newClock(), b: newRedisBackend(client, 2*time.Second), client: client, prefix: prefix})
	})
}

// redisForTest returns a client on the local Redis and a unique key prefix whose keys are
// deleted at cleanup. It skips locally (fails in CI) when Redis cannot be reached.
func redisForTest(t testing.TB) (*redis.Client, string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s unreachable: %v", redisAddr, err)
		}
		t.Skipf("redis at %s unreachable: %v", redisAddr, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "authgate-test:" + hex.EncodeToString(rnd[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup of %s: %v", prefix, err)
		}
		client.Close()
	})
	return client, prefix
}

// newStore builds a Store on e's backend; mutate adjusts the default test options.
func (e *env) newStore(t testing.TB, mutate func(*Options)) *Store {
	t.Helper()
	o := Options{
		CookieName: "__Host-authgate", Secure: true, SameSite: http.SameSiteLaxMode,
		Secrets:     [][]byte{secretA()},
		IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour,
		KeyPrefix: e.prefix, Now: e.clock.Now,
	}
	if mutate != nil {
		mutate(&o)
	}
	o, err := o.withDefaults()
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	st, err := newStore(o, e.b)
	if err != nil {
		t.Fatalf("newStore: %v", err)
	}
	return st
}

// rawGet reads a backend key directly (a real Redis GET for the redis backend).
func (e *env) rawGet(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	if e.client != nil {
		b, err := e.client.Get(context.Background(), key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, false
		}
		if err != nil {
			t.Fatalf("redis GET: %v", err)
		}
		return b, true
	}
	b, err := e.b.get(context.Background(), key)
	return b, err == nil
}

// ttl returns the remaining backend lifetime of key.
func (e *env) ttl(t *testing.T, key string) time.Duration {
	t.Helper()
	if e.client != nil {
		d, err := e.client.PTTL(context.Background(), key).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		return d
	}
	m := e.b.(*memBackend)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.strs[key].exp.Sub(e.clock.Now())
}

// testIssuer is the issuer of testRecord's records; "sub-" + user their subject.
const testIssuer = "https://idp.example.com/"

func testRecord(user string) *Record {
	return &Record{
		UserID: user, Subject: "sub-" + user, Issuer: testIssuer,
		Email: user + "@example.com", EmailVerified: true, Name: "User " + user,
		Roles: []string{"viewer"}, Groups: []string{"staff"}, IdPSessionID: "sid-" + user,
		Provider: "default", IDToken: "idtok-" + user + "-SECRET", AccessToken: "access-" + user + "-SECRET",
		RefreshToken: "refresh-" + user + "-SECRET", IP: "192.0.2.1", UserAgent: "test-agent",
	}
}

// login saves rec as a new session and returns the session and the Set-Cookie it produced.
func login(t *testing.T, st *Store, rec *Record) (*sessions.Session, *http.Cookie) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/.auth/callback", nil)
	sess, err := st.New(r, st.CookieName())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	SetRecord(sess, rec)
	w := httptest.NewRecorder()
	if err := st.Save(r, w, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Save set %d cookies, want 1", len(cookies))
	}
	return sess, cookies[0]
}

// get runs Store.Get on a request carrying cookies.
func get(t *testing.T, st *Store, cookies ...*http.Cookie) (*sessions.Session, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/x", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	sess, err := st.Get(r, st.CookieName())
	if sess == nil {
		t.Fatal("Get returned a nil session")
	}
	return sess, err
}

// mustLive asserts that cookie names a live session and returns its record.
func mustLive(t *testing.T, st *Store, c *http.Cookie) *Record {
	t.Helper()
	sess, err := get(t, st, c)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	rec := RecordFrom(sess)
	if sess.IsNew || rec == nil {
		t.Fatalf("Get: IsNew=%v record=%v, want a live session", sess.IsNew, rec != nil)
	}
	return rec
}

// mustGone asserts that the cookies name no session: a new, empty session and a nil error.
func mustGone(t *testing.T, st *Store, cookies ...*http.Cookie) {
	t.Helper()
	sess, err := get(t, st, cookies...)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sess.IsNew || sess.ID != "" || RecordFrom(sess) != nil {
		t.Fatalf("Get: IsNew=%v ID set=%v record=%v, want a new empty session", sess.IsNew, sess.ID != "", RecordFrom(sess) != nil)
	}
}

// appendRecordV2 appends the version-2 encoding of rec with its already sealed tokens, in
// format 3 when zipped, and its user agent as it is (encodeRecord compresses it when it can).
func appendRecordV2(b []byte, rec *Record, tag uint32, sealed []byte, zipped bool) []byte {
	return appendRecordV2UA(b, rec, tag, sealed, zipped, nil)
}
