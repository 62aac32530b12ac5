package session

import (
	"context"
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

// BenchmarkTouch compares the idle-expiry touch of format 2 (LastSeenAt rewritten in place,
// 13 bytes sent) with the whole-record compare-and-set of format 1 (old and new record sent),
// on a record with tokens the size of the bench IdP's. Run:
//
//	go test -run '^$' -bench Touch -benchmem ./session/
func BenchmarkTouch(b *testing.B) {
	client, prefix := redisForTest(b)
	e := &env{clock: newClock(), b: newRedisBackend(client, 2*time.Second), client: client, prefix: prefix}
	st := e.newStore(b, nil)
	rec := testRecord("bench")
	rec.IDToken, rec.AccessToken, rec.RefreshToken = jwtLike(52, 481, 256), jwtLike(105, 32, 12, 33, 16), jwtLike(32)
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt = handleOf("bench"), e.clock.Now(), e.clock.Now(), e.clock.Now().Add(time.Hour)
	ctx, key := context.Background(), st.sessionKey(rec.Handle)
	b.Run("in-place", func(b *testing.B) {
		if err := st.write(ctx, rec, setAlways); err != nil {
			b.Fatal(err)
		}
		raw, _ := client.Get(ctx, key).Bytes()
		tag := tagOf(raw)
		for b.Loop() {
			if _, _, ok, err := st.touch(ctx, key, nil, tag, rec.clone(), e.clock.Now(), 0); !ok || err != nil {
				b.Fatal("touch failed", err)
			}
		}
	})
	b.Run("whole-record-cas", func(b *testing.B) {
		if err := st.write(ctx, rec, setAlways); err != nil {
			b.Fatal(err)
		}
		raw, _ := client.Get(ctx, key).Bytes()
		for b.Loop() {
			r := rec.clone()
			r.LastSeenAt = e.clock.Now()
			val, err := st.keys.encodeRecord(r, newTag())
			if err != nil {
				b.Fatal(err)
			}
			if res, err := st.b.cas(ctx, key, raw, val, time.Hour); res != casDone || err != nil {
				b.Fatal("cas failed", err)
			}
			raw = val
		}
	})
}

// BenchmarkRecordCodec measures encoding (at login and refresh: compress, seal) and decoding
// (on every request that reads Redis: open, decompress, parse) of the devidp login's record, with
// its tokens in format 3 (what encodeRecord writes) and in format 2. Run:
//
//	go test -run '^$' -bench RecordCodec -benchmem ./session/
func BenchmarkRecordCodec(b *testing.B) {
	k, err := deriveKeys([][]byte{secretA()}, 3600)
	if err != nil {
		b.Fatal(err)
	}
	rec := exampleRecord()
	v3, err := k.encodeRecord(rec, 1)
	if err != nil || v3[v2Header]&flagZipped == 0 {
		b.Fatalf("not format 3: %v", err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.encodeRecord(rec, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(v3)), "B/record")
	})
	for _, tt := range []struct {
		name string
		raw  []byte
	}{{"decode", v3}, {"decode-v2", k.encodeRecordV2Only(b, rec, 1)}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.decodeRecord("h", tt.raw, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tt.raw)), "B/record")
		})
	}
}
