package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
)

// pair is two Stores on one Redis key prefix, each with its own client, like two instances.
type pair struct {
	a, b             *Store
	clientA, clientB *redis.Client
	clock            *testClock
	prefix           string
}

// newPair builds the two instances. Caches live an hour on the frozen test clock, so only an
// invalidation (or a test moving the clock) can drop an entry. mutate adjusts both Options.
func newPair(t *testing.T, mutate func(*Options)) *pair {
	t.Helper()
	clientA, prefix := redisForTest(t)
	p := &pair{clientA: clientA, clock: newClock(), prefix: prefix}
	p.clientB = redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: time.Second,
		ClientName: "authgate-test-b-" + strings.Trim(prefix[len("authgate-test:"):], ":")})
	t.Cleanup(func() { p.clientB.Close() })
	p.a = newRedisStore(t, clientA, prefix, p.clock, mutate)
	p.b = newRedisStore(t, p.clientB, prefix, p.clock, mutate)
	return p
}

// newRedisStore is NewRedis with the test options; the Store is closed at cleanup and its
// subscription is up when it returns (when it has a cache).
func newRedisStore(t *testing.T, client redis.UniversalClient, prefix string, clock *testClock, mutate func(*Options)) *Store {
	t.Helper()
	o := Options{Secure: true, Secrets: [][]byte{secretA()}, KeyPrefix: prefix, Now: clock.Now,
		CacheTTL: time.Hour, OpTimeout: time.Second}
	if mutate != nil {
		mutate(&o)
	}
	st, err := NewRedis(client, o)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if st.cache != nil {
		waitCacheHealthy(t, st)
	}
	return st
}

// cached reports whether st's cache would serve handle now.
func cached(st *Store, handle string) bool { return st.cache.get([]byte(handle), st.now()) != nil }

// within polls cond every 5ms and fails the test unless it holds within d (real time).
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isGone reports whether the cookie names no session on st (a new session and no error).
func isGone(t *testing.T, st *Store, c *http.Cookie) bool {
	t.Helper()
	sess, err := get(t, st, c)
	return err == nil && sess.IsNew && RecordFrom(sess) == nil
}

func TestCacheAcrossInstances(t *testing.T) {
	const iss = "https://idp.example.com/"
	tests := []struct {
		name   string
		change func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error
		// wantGone: B must refuse the cookie; otherwise B must serve AccessToken "changed".
		wantGone bool
	}{
		{name: "Revoke", wantGone: true, change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			return a.Revoke(ctx, rec.Handle)
		}},
		{name: "RevokeIdPSession", wantGone: true, change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			return nOK(a.RevokeIdPSession(ctx, iss, rec.IdPSessionID))
		}},
		{name: "RevokeSubject", wantGone: true, change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			return nOK(a.RevokeSubject(ctx, iss, rec.Subject))
		}},
		{name: "Save with MaxAge<0", wantGone: true, change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			return saveWith(a, sess, -1)
		}},
		{name: "Update", change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			rec.AccessToken = "changed"
			return a.Update(ctx, rec)
		}},
		{name: "Save", change: func(ctx context.Context, a *Store, sess *sessions.Session, rec *Record) error {
			rec.AccessToken = "changed"
			return saveWith(a, sess, 0)
		}},
	}
	p := newPair(t, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("user%d", i)
			sess, c := login(t, p.a, testRecord(user))
			rec := RecordFrom(sess)
			if got := mustLive(t, p.b, c); got.UserID != user { // saved on A, served by B
				t.Fatalf("B served user %q, want %q", got.UserID, user)
			}
			if !cached(p.b, rec.Handle) {
				t.Fatal("B did not cache the session")
			}
			start := time.Now()
			if err := tt.change(context.Background(), p.a, sess, rec); err != nil {
				t.Fatalf("change on A: %v", err)
			}
			within(t, time.Second, "B sees the change", func() bool {
				if tt.wantGone {
					return isGone(t, p.b, c)
				}
				return mustLive(t, p.b, c).AccessToken == "changed"
			})
			t.Logf("B saw the change after %v", time.Since(start))
		})
	}
}

func nOK(n int, err error) error {
	if err == nil && n == 0 {
		return errors.New("nothing revoked")
	}
	return err
}

// saveWith saves sess through st's Save (maxAge < 0 deletes).
func saveWith(st *Store, sess *sessions.Session, maxAge int) error {
	sess.Options.MaxAge = maxAge
	return st.Save(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder(), sess)
}

// deleteBehindBack removes a session key without publishing, like an invalidation that was lost.
func (p *pair) deleteBehindBack(t *testing.T, handle string) {
	t.Helper()
	if err := p.clientA.Del(context.Background(), p.a.sessionKey(handle)).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCacheTTLAndTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		cacheTTL time.Duration
		advance  time.Duration
		delete   bool // delete the key without publishing first
		active   bool // use the session on B every 29m before the last advance
		want     bool // B still serves the session
	}{
		{name: "within CacheTTL serves the cached copy", cacheTTL: time.Minute, advance: 59 * time.Second, delete: true, want: true},
		{name: "after CacheTTL reads Redis", cacheTTL: time.Minute, advance: time.Minute, delete: true},
		{name: "idle timeout enforced on a cached record", cacheTTL: 3 * time.Hour, advance: 31 * time.Minute},
		{name: "absolute timeout enforced on a cached record", cacheTTL: 3 * time.Hour, active: true, advance: 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, func(o *Options) {
				o.CacheTTL, o.IdleTimeout, o.AbsoluteTimeout, o.TouchInterval = tt.cacheTTL, 30*time.Minute, time.Hour, 15*time.Minute
			})
			sess, c := login(t, p.a, testRecord("alice"))
			mustLive(t, p.b, c)
			if tt.delete {
				p.deleteBehindBack(t, handleOf(sess.ID))
			}
			for range 2 {
				if tt.active { // 58m, never idle for 30m
					p.clock.Advance(29 * time.Minute)
					mustLive(t, p.b, c)
				}
			}
			p.clock.Advance(tt.advance)
			if tt.want {
				mustLive(t, p.b, c)
			} else {
				mustGone(t, p.b, c)
			}
		})
	}
}

func TestCacheTouch(t *testing.T) {
	p := newPair(t, func(o *Options) { o.TouchInterval = time.Minute })
	ctx := context.Background()
	sess, c := login(t, p.a, testRecord("alice"))
	h := handleOf(sess.ID)
	mustLive(t, p.b, c) // cached on B

	p.clock.Advance(61 * time.Second)
	if rec := mustLive(t, p.b, c); !rec.LastSeenAt.Equal(p.clock.Now()) {
		t.Errorf("cached Get past TouchInterval: LastSeenAt = %v, want now", rec.LastSeenAt)
	}
	if rec, err := p.a.Lookup(ctx, h); err != nil || !rec.LastSeenAt.Equal(p.clock.Now()) {
		t.Fatalf("touch from the cache not written to Redis: %v %v", rec, err)
	}
	if !cached(p.b, h) {
		t.Error("touched record not cached")
	}
	key := p.a.sessionKey(h)
	raw, _ := p.clientA.Get(ctx, key).Bytes()
	p.clock.Advance(30 * time.Second)
	mustLive(t, p.b, c)
	if again, _ := p.clientA.Get(ctx, key).Bytes(); string(again) != string(raw) {
		t.Error("record rewritten before TouchInterval")
	}

	// An Update whose invalidation B missed: B's cached bytes are outdated, so its next touch
	// conflicts, and B must reload rather than serve its copy.
	rec, _ := p.a.Lookup(ctx, h)
	rec.AccessToken = "rotated"
	val, err := p.a.keys.encodeRecord(rec, newTag())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.clientA.SetArgs(ctx, key, val, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := mustLive(t, p.b, c); got.AccessToken == "rotated" {
		t.Fatal("B read Redis: the test needs a cache hit here")
	}
	p.clock.Advance(61 * time.Second)
	if got := mustLive(t, p.b, c); got.AccessToken != "rotated" {
		t.Errorf("B after a conflicting touch: AccessToken = %q, want the update", got.AccessToken)
	}
}
