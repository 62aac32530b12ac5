package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkGet measures the per-request path: cookie parse + HMAC verify + record load.
// memory and redis read the backend every time (binary decode + AES-GCM open of the tokens);
// redis-cache is the warm-cache path (no Redis round trip). Run:
//
//	go test -run '^$' -bench Get -benchmem ./session/
func BenchmarkGet(b *testing.B) {
	for _, tt := range []struct {
		name     string
		redis    bool
		cacheTTL time.Duration
	}{
		{name: "memory"},
		{name: "redis", redis: true, cacheTTL: -1},
		{name: "redis-cache", redis: true, cacheTTL: time.Hour},
	} {
		b.Run(tt.name, func(b *testing.B) {
			st, req := benchStore(b, tt.redis, tt.cacheTTL)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := st.Get(req, st.CookieName())
				if err != nil || s.IsNew {
					b.Fatalf("Get: IsNew=%v err=%v", s.IsNew, err)
				}
			}
		})
	}
}

// benchStore returns a store (memory, or Redis with the given CacheTTL) holding one session
// and a request carrying its cookie, after one Get so the cache is warm.
func benchStore(tb testing.TB, onRedis bool, cacheTTL time.Duration) (*Store, *http.Request) {
	tb.Helper()
	opts := Options{Secure: true, Secrets: [][]byte{secretA()}, CacheTTL: cacheTTL, KeyPrefix: "bench:"}
	var (
		st  *Store
		err error
	)
	if onRedis {
		client, prefix := redisForTest(tb)
		opts.KeyPrefix = prefix
		st, err = NewRedis(client, opts)
		if err == nil {
			tb.Cleanup(func() { _ = st.Close() })
		}
	} else {
		st, err = NewMemory(opts)
	}
	if err != nil {
		tb.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ := st.New(r, st.CookieName())
	SetRecord(sess, testRecord("bench"))
	w := httptest.NewRecorder()
	if err := st.Save(r, w, sess); err != nil {
		tb.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
	req.AddCookie(w.Result().Cookies()[0])
	if onRedis && cacheTTL > 0 {
		waitCacheHealthy(tb, st)
	}
	if s, err := st.Get(req, st.CookieName()); err != nil || s.IsNew {
		tb.Fatalf("warm-up Get: IsNew=%v err=%v", s.IsNew, err)
	}
	return st, req
}

// waitCacheHealthy waits (at most 2s) until st's invalidation subscription is up.
func waitCacheHealthy(tb testing.TB, st *Store) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !st.cache.healthy() {
		if time.Now().After(deadline) {
			tb.Fatal("invalidation subscription not up after 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
