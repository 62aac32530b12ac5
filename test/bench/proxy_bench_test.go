package bench

import (
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// serveLoop serves b.N authenticated GETs through h, each a fresh request, and fails on the
// first answer that is not the upstream's 200 with its 100 bytes.
func serveLoop(b *testing.B, h http.Handler, cookie string) {
	b.Helper()
	w := newDiscardWriter()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, newRequest(cookie))
		if !w.ok() {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// BenchmarkBareProxy is the baseline: httputil.ReverseProxy to the stubbed upstream, with the
// same request (its cookie is just forwarded).
func BenchmarkBareProxy(b *testing.B) {
	serveLoop(b, bareProxy(b), cookieName+"=whatever")
}

// BenchmarkGatewayMemory is an authenticated GET through the gateway with the memory session
// store: the whole middleware stack, session cookie verification, record decode and
// token unsealing, policy, identity headers, proxy.
func BenchmarkGatewayMemory(b *testing.B) {
	bg := newBenchGateway(b, storeMemory)
	serveLoop(b, bg.handler, bg.cookie)
}

// BenchmarkGatewayRedis is the same GET with the Redis session store: "cache" is the default
// (a record read within 1s is served from the in-process cache), "nocache" does one Redis GET
// per request (the cost when requests of one session are rarer than one a second, or spread
// over many instances). redis-gets/op is counted by a go-redis hook.
func BenchmarkGatewayRedis(b *testing.B) {
	for _, tt := range []struct {
		name  string
		store sessionStore
	}{
		{name: "cache", store: storeRedisCache},
		{name: "nocache", store: storeRedisNoCache},
	} {
		b.Run(tt.name, func(b *testing.B) {
			bg := newBenchGateway(b, tt.store)
			start := bg.gets()
			serveLoop(b, bg.handler, bg.cookie)
			b.ReportMetric(float64(bg.gets()-start)/float64(b.N), "redis-gets/op")
		})
	}
}

// TestProxyAllocBudget fails when an authenticated GET through the gateway (stubbed upstream)
// allocates more than it does today: with the memory session store (which decodes the record
// on every request) and with the Redis store's warm cache (the production path: the cached
// record is shared, not copied, and its identity header fields are memoized).
//
// Measured with go1.27.3 (allocations per request, including building the request and the
// stub's response, which the bare proxy pays too): bare proxy 33, gateway memory store 53,
// Redis cache 45; under -race 33, 56 and 45 (the detector drops pooled items at random).
// History: 54 with the memory store before token format 3 (its JWT-shaped sample record now
// decodes with one allocation less), 61/62 before the shared cached record (session.Store.Load), 63/67 with package
// session as of commit 44c1557. The stub transport is not an *http.Transport, so Serve still
// arms its own route-timeout timer here (7 allocations that serve's built-in transports do
// not pay). Budget: measured + 3. Raise it only with a reason in the commit message.
func TestProxyAllocBudget(t *testing.T) {
	const (
		budget, raceBudget           = 53 + 3, 56 + 3
		redisBudget, redisRaceBudget = 45 + 3, 45 + 3
	)
	bg := newBenchGateway(t, storeMemory)
	rg := newBenchGateway(t, storeRedisCache)
	tests := []struct {
		name       string
		h          http.Handler
		cookie     string
		budget     float64 // 0: measured and logged only
		raceBudget float64
	}{
		{name: "bare proxy", h: bareProxy(t), cookie: cookieName + "=whatever"},
		{name: "gateway memory store", h: bg.handler, cookie: bg.cookie, budget: budget, raceBudget: raceBudget},
		{name: "gateway redis cache", h: rg.handler, cookie: rg.cookie, budget: redisBudget, raceBudget: redisRaceBudget},
	}
	if raceEnabled {
		for i := range tests {
			tests[i].budget = tests[i].raceBudget
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newDiscardWriter()
			failed := 0
			allocs := testing.AllocsPerRun(300, func() {
				w.reset()
				tt.h.ServeHTTP(w, newRequest(tt.cookie))
				if !w.ok() {
					failed++
				}
			})
			if failed > 0 {
				t.Fatalf("%d requests did not reach the upstream with the identity (last status %d)", failed, w.status)
			}
			t.Logf("%v allocs per request (race detector: %v)", allocs, raceEnabled)
			if tt.budget > 0 && allocs > tt.budget {
				t.Errorf("an authenticated GET allocates %v times, budget %v: find the new allocation "+
					"(go test -run '^$' -bench GatewayMemory -memprofile mem.out ./test/bench/)", allocs, tt.budget)
			}
		})
	}
}

// BenchmarkGatewayRedisSessions spreads requests at random over many live sessions (Redis
// store, default cache): most requests miss the cache and read Redis, and the cache fills to
// its bound. It reports the live heap after a GC per cached session: the memory the cache
// costs. Profile what stays live with -memprofile (inuse_space).
func BenchmarkGatewayRedisSessions(b *testing.B) {
	const sessions = 20000
	bg := newBenchGateway(b, storeRedisCache)
	cookies := make([]string, sessions)
	for i := range cookies {
		cookies[i] = login(b, bg.store, SampleRecord(i))
	}
	b.Run("random-of-20000", func(b *testing.B) {
		w := newDiscardWriter()
		heap0 := liveHeap()
		start := bg.gets()
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			i = (i + 7919) % sessions // a prime stride: every session, in a scattered order
			w.reset()
			bg.handler.ServeHTTP(w, newRequest(cookies[i]))
			if !w.ok() {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(bg.gets()-start)/float64(b.N), "redis-gets/op")
		b.ReportMetric(float64(liveHeap()-heap0)/(1<<20), "live-heap-MiB")
		writeHeapProfile(b, os.Getenv("BENCH_HEAPPROFILE"))
	})
}

// writeHeapProfile writes the heap profile to path (if set) while the gateway is still live;
// -memprofile is written after the cleanups, when the cache is gone.
//
//	BENCH_HEAPPROFILE=heap.out go test -run '^$' -bench RedisSessions -benchtime 60000x ./test/bench/
//	go tool pprof -sample_index=inuse_space -top heap.out
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
