package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// storePair is two session stores on one Redis deployment and key prefix, each with its own
// client (two gateway instances), plus a raw client for looking behind the store's back.
type storePair struct {
	a, b   *session.Store
	raw    redis.UniversalClient
	prefix string
}

func newStorePair(t *testing.T, nc newClient) *storePair {
	t.Helper()
	p := &storePair{prefix: randomPrefix("store")}
	opts := fixture.DeploymentStoreOptions([][]byte{fixture.Secret()}, p.prefix)
	p.a, p.raw = newStore(t, nc, opts)
	p.b, _ = newStore(t, nc, opts)
	return p
}

// save creates a session for rec in st and returns its cookie.
func save(t *testing.T, st *session.Store, rec *session.Record) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ := st.New(r, "")
	session.SetRecord(sess, rec)
	w := httptest.NewRecorder()
	if err := st.Save(r, w, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == fixture.CookieName && c.Value != "" {
			return c
		}
	}
	t.Fatal("Save set no session cookie")
	return nil
}

// get loads the session of cookie from st: its record, or nil for a new (anonymous) session.
func get(t *testing.T, st *session.Store, cookie *http.Cookie) *session.Record {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	sess, err := st.Get(r, "")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if sess.IsNew {
		return nil
	}
	return session.RecordFrom(sess)
}

func newRecord(user, sid string) *session.Record {
	return &session.Record{UserID: user, Subject: "sub-" + user, Issuer: "https://idp.example", IdPSessionID: sid,
		Email: user + "@example.com", AccessToken: "at-" + user, RefreshToken: "rt-" + user, IDToken: "id-" + user,
		TokenExpiry: time.Now().Add(time.Hour)}
}

// TestStoreOnRedisCluster runs the session store API on a real Redis Cluster: every operation,
// including the ones that touch a session and its index sets (in other slots), succeeds and
// behaves as on a single server.
func TestStoreOnRedisCluster(t *testing.T) {
	nc := clusterClients(startCluster(t))
	ctx := context.Background()

	t.Run("save, get, update and revoke across instances", func(t *testing.T) {
		p := newStorePair(t, nc)
		cookie := save(t, p.a, newRecord("u1", "sid-1"))
		rec := get(t, p.b, cookie)
		if rec == nil || rec.UserID != "u1" || rec.AccessToken != "at-u1" {
			t.Fatalf("instance b read %+v", rec)
		}
		rec.AccessToken = "at-refreshed"
		if err := p.b.Update(ctx, rec); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if got := get(t, p.a, cookie); got == nil || got.AccessToken != "at-refreshed" {
			t.Fatalf("instance a after Update: %+v", got)
		}
		if err := p.a.Revoke(ctx, rec.Handle); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if got := get(t, p.b, cookie); got != nil {
			t.Error("revoked session still served by instance b")
		}
		if err := p.b.Update(ctx, rec); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Update of a revoked session = %v, want ErrNotFound (never resurrected)", err)
		}
		if err := p.b.Revoke(ctx, rec.Handle); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("second Revoke = %v, want ErrNotFound", err)
		}
	})

	t.Run("invalidation reaches the other instance's cache", func(t *testing.T) {
		testCacheInvalidation(t, newStorePair(t, nc))
	})

	t.Run("sessions spread over every master; List and ListSubject find them", func(t *testing.T) {
		testListings(t, newStorePair(t, nc))
	})

	t.Run("revoke by IdP session and subject", func(t *testing.T) {
		testIndexRevocation(t, newStorePair(t, nc))
	})

	t.Run("a flow is taken exactly once", func(t *testing.T) {
		p := newStorePair(t, nc)
		for i := range 5 { // states hash to different slots
			state := fmt.Sprintf("state-%d-%s", i, strings.Repeat("x", 20))
			if err := p.a.PutFlow(ctx, state, session.Flow{Nonce: "n", Verifier: "v", ReturnTo: "/r"}, time.Minute); err != nil {
				t.Fatalf("PutFlow: %v", err)
			}
			var won atomic.Int32
			var wg sync.WaitGroup
			for j := range 10 {
				st := []*session.Store{p.a, p.b}[j%2]
				wg.Go(func() {
					f, err := st.TakeFlow(ctx, state)
					switch {
					case err == nil && f.Verifier == "v" && f.ReturnTo == "/r":
						won.Add(1)
					case err != nil && !errors.Is(err, session.ErrNotFound):
						t.Errorf("TakeFlow: %v", err)
					}
				})
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Errorf("flow %d taken %d times, want 1", i, won.Load())
			}
		}
	})

	t.Run("a lock has one holder across instances", func(t *testing.T) {
		p := newStorePair(t, nc)
		unlockA, ok, err := p.a.TryLock(ctx, "refresh:x", 5*time.Second)
		if err != nil || !ok {
			t.Fatalf("first TryLock = %v, %v", ok, err)
		}
		if _, ok, err := p.b.TryLock(ctx, "refresh:x", 5*time.Second); err != nil || ok {
			t.Fatalf("second holder: ok %v, err %v", ok, err)
		}
		if _, ok, err := p.b.TryLock(ctx, "refresh:y", 5*time.Second); err != nil || !ok {
			t.Fatalf("another lock name: ok %v, err %v", ok, err)
		}
		if err := unlockA(ctx); err != nil {
			t.Fatal(err)
		}
		unlockB, ok, err := p.b.TryLock(ctx, "refresh:x", 5*time.Second)
		if err != nil || !ok {
			t.Fatalf("after unlock: ok %v, err %v", ok, err)
		}
		if err := unlockA(ctx); err != nil { // a stale unlock must not release b's lock
			t.Fatal(err)
		}
		if _, ok, _ := p.a.TryLock(ctx, "refresh:x", 5*time.Second); ok {
			t.Error("a stale unlock released another holder's lock")
		}
		_ = unlockB(ctx)
	})

	t.Run("ping", func(t *testing.T) {
		if err := newStorePair(t, nc).a.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// testCacheInvalidation: instance b serves sessions from its cache (one deleted behind the
// stores' back is still served), yet a Revoke on instance a is refused by b at once: the
// invalidation crossed the Cluster by pub/sub.
func testCacheInvalidation(t *testing.T, p *storePair) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second) // until b's subscription is up and its cache used
	for {
		c := save(t, p.a, newRecord("u2", ""))
		rec := get(t, p.b, c)
		if err := p.raw.Del(ctx, p.prefix+"s:{"+rec.Handle+"}").Err(); err != nil {
			t.Fatal(err)
		}
		if get(t, p.b, c) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance b never served from its cache: the check below would prove nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c1 := save(t, p.a, newRecord("u1", ""))
	r1 := get(t, p.b, c1) // cached by b now
	if r1 == nil {
		t.Fatal("instance b cannot read the session")
	}
	if err := p.a.Revoke(ctx, r1.Handle); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for get(t, p.b, c1) != nil { // pub/sub latency: milliseconds, far below the 1s CacheTTL
		if time.Since(revoked) > 200*time.Millisecond {
			t.Fatal("instance b still serves the revoked session 200ms after Revoke")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testListings: 30 sessions of 3 users land on all 3 masters; List (SCAN on every master) and
// ListSubject (index in one slot, sessions in others) return them without tokens.
func testListings(t *testing.T, p *storePair) {
	ctx := context.Background()
	want := map[string][]string{}
	for i := range 30 {
		user := fmt.Sprintf("user-%d", i%3)
		rec := get(t, p.a, save(t, p.a, newRecord(user, "")))
		want[user] = append(want[user], rec.Handle)
	}
	if n := mastersHolding(t, p.raw.(*redis.ClusterClient), p.prefix+"s:"); n != 3 {
		t.Fatalf("sessions on %d masters, want 3", n)
	}
	all, err := p.b.List(ctx, session.MaxListLimit)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(all) != 30 {
		t.Errorf("List returned %d sessions, want 30", len(all))
	}
	for _, rec := range all {
		if rec.AccessToken != "" || rec.RefreshToken != "" || rec.IDToken != "" {
			t.Fatalf("List returned tokens of %s", rec.Handle)
		}
	}
	if few, err := p.b.List(ctx, 5); err != nil || len(few) != 5 {
		t.Errorf("List(5) = %d sessions, %v; want 5", len(few), err)
	}
	for user, handles := range want {
		list, err := p.b.ListSubject(ctx, "https://idp.example", "sub-"+user)
		if err != nil {
			t.Fatalf("ListSubject: %v", err)
		}
		got := handlesOf(list)
		slices.Sort(got)
		slices.Sort(handles)
		if !slices.Equal(got, handles) {
			t.Errorf("ListSubject(sub-%s) = %v, want %v", user, got, handles)
		}
	}
}

// mastersHolding counts the masters that hold at least one key starting with prefix.
func mastersHolding(t *testing.T, c *redis.ClusterClient, prefix string) int {
	t.Helper()
	var n atomic.Int32
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		keys, _, err := m.Scan(ctx, 0, prefix+"*", 1000).Result()
		if len(keys) > 0 {
			n.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(n.Load())
}

// testIndexRevocation: RevokeIdPSession and RevokeSubject end exactly their
// sessions, which live in other slots than the index set, and prune the index.
func testIndexRevocation(t *testing.T, p *storePair) {
	ctx := context.Background()
	type made struct {
		rec    *session.Record
		cookie *http.Cookie
	}
	mk := func(user, sid string) made {
		c := save(t, p.a, newRecord(user, sid))
		return made{rec: get(t, p.a, c), cookie: c}
	}
	a1, a2, a3 := mk("alice", "sid-a1"), mk("alice", "sid-a1"), mk("alice", "sid-a2")
	b1, c1 := mk("bob", "sid-b1"), mk("carol", "sid-c1")
	alive := func(want ...made) {
		t.Helper()
		for _, m := range []made{a1, a2, a3, b1, c1} {
			got := get(t, p.b, m.cookie) != nil
			if exp := slices.Contains(want, m); got != exp {
				t.Errorf("session of %s/%s alive = %v, want %v", m.rec.UserID, m.rec.IdPSessionID, got, exp)
			}
		}
	}
	steps := []struct {
		name   string
		revoke func() (int, error)
		n      int
		alive  []made
	}{
		{name: "RevokeIdPSession", revoke: func() (int, error) { return p.b.RevokeIdPSession(ctx, a1.rec.Issuer, "sid-a1") },
			n: 2, alive: []made{a3, b1, c1}},
		{name: "RevokeIdPSession again", revoke: func() (int, error) { return p.b.RevokeIdPSession(ctx, a1.rec.Issuer, "sid-a1") },
			n: 0, alive: []made{a3, b1, c1}},
		{name: "RevokeSubject", revoke: func() (int, error) { return p.b.RevokeSubject(ctx, b1.rec.Issuer, b1.rec.Subject) },
			n: 1, alive: []made{a3, c1}},
		{name: "RevokeSubject from the other instance", revoke: func() (int, error) { return p.a.RevokeSubject(ctx, a3.rec.Issuer, a3.rec.Subject) },
			n: 1, alive: []made{c1}},
	}
	for _, s := range steps {
		n, err := s.revoke()
		if err != nil || n != s.n {
			t.Fatalf("%s = %d, %v; want %d", s.name, n, err, s.n)
		}
		alive(s.alive...)
	}
	if list, err := p.b.ListSubject(ctx, a3.rec.Issuer, a3.rec.Subject); err != nil || len(list) != 0 {
		t.Errorf("ListSubject(alice) after RevokeSubject = %d sessions, %v", len(list), err)
	}
	// The index buckets (<prefix>ix:{n} hashes, fields an 8-byte lookup hash + the handle's
	// 132 bits in 17 bytes) still name alice's last session for its IdP session, no longer for
	// her subject.
	raw, err := base64.RawURLEncoding.DecodeString(a3.rec.Handle + "AA")
	if err != nil {
		t.Fatal(err)
	}
	packed := string(raw[:17])
	var mu sync.Mutex
	entries := 0
	each := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, p.prefix+"ix:*", 100).Iterator()
		for iter.Next(ctx) {
			fields, err := c.HKeys(ctx, iter.Val()).Result()
			if err != nil {
				return err
			}
			for _, f := range fields {
				if len(f) == 25 && strings.HasSuffix(f, packed) {
					mu.Lock()
					entries++
					mu.Unlock()
				}
			}
		}
		return iter.Err()
	}
	if cc, ok := p.raw.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return each(ctx, c) })
	} else {
		err = each(ctx, p.raw)
	}
	if err != nil || entries != 1 {
		t.Errorf("index entries of alice's revoked session after RevokeSubject: %d, %v; want 1 (IdP session)", entries, err)
	}
}
