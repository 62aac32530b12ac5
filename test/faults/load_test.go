package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// Load test shape, as issue 9 asks: 10,000 sessions, 200 concurrent connections, 30 s of
// mixed load in two equal phases. On two cores with the race detector the test takes about a
// minute. AUTHGATE_LOAD_DURATION (per phase, a Go duration), AUTHGATE_LOAD_SESSIONS and
// AUTHGATE_LOAD_WORKERS change the shape for other runs.
const (
	defaultLoadSessions = 10_000
	defaultLoadWorkers  = 200
	defaultLoadPhase    = 15 * time.Second
	// minLoadExpiry: after the load, every session's ExpiresAt is moved this far ahead, plus
	// twice the time minting took (through Store.Update, as a token refresh writes), so Redis
	// drops it by TTL within the test.
	minLoadExpiry = 2 * time.Second
)

// loadShape reads the shape from the environment, with the defaults above.
func loadShape(t *testing.T) (sessions, workers int, phase time.Duration) {
	t.Helper()
	sessions, workers, phase = defaultLoadSessions, defaultLoadWorkers, defaultLoadPhase
	if v := os.Getenv("AUTHGATE_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("AUTHGATE_LOAD_DURATION=%q: want a positive Go duration", v)
		}
		phase = d
	}
	for _, e := range []struct {
		name string
		dst  *int
	}{{"AUTHGATE_LOAD_SESSIONS", &sessions}, {"AUTHGATE_LOAD_WORKERS", &workers}} {
		if v := os.Getenv(e.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive integer", e.name, v)
			}
			*e.dst = n
		}
	}
	return sessions, workers, phase
}

// phaseResult is what one load phase measured.
type phaseResult struct {
	requests      int
	rate          float64
	p50, p99, max time.Duration
	goroutines    int           // after the phase, once idle, not counting idle keep-alive connections
	idleConns     int           // goroutines of idle keep-alive connections (pools, bounded by the workers)
	heap          uint64        // HeapInuse after the phase, after a GC
	keys          int           // keys in Redis after the phase
	cpuPerReq     time.Duration // this process's CPU time (user+system) per request
}

// loadRun is what TestLoad measured, for the report.
type loadRun struct {
	sessions, workers   int
	phase, minted       time.Duration
	res                 [2]phaseResult
	keysBase, keysMint  int           // keys in Redis before and after the sessions were made
	expired             time.Duration // from ExpiresAt until the last session key was gone
	keysLeft, indexLeft int           // keys left after expiry: all, and index keys among them
}

// TestLoad: 10,000 sessions in a private Redis, 200 workers (one connection each) sending a
// mix of authenticated GETs and same-origin POSTs (and a few requests that must be refused)
// through the gateway to the guard upstream, in two equal phases: not one unexpected status, no
// request let through without its session, no goroutine growth, a comparable heap and the same
// number of Redis keys after both phases. Then the sessions expire: Redis drops every session
// key by TTL (back to the baseline of 0), the gateway refuses the expired cookies, and every key
// left (the per-user and per-subject index keys, which outlive their members by design) has a
// TTL of at most AbsoluteTimeout+1m, so the key count returns to the baseline by itself.
func TestLoad(t *testing.T) {
	n, workers, d := loadShape(t)
	rs := fixture.StartRedisServer(t, fixture.RedisServerOptions{})
	rdb := fixture.NewRedisClient(rs.Addr)
	t.Cleanup(func() { _ = rdb.Close() })
	const prefix = "authgate-load:"
	rg := startRig(t, rigOptions{store: redisStore(t, rs.Addr, prefix)})
	run := loadRun{sessions: n, workers: workers, phase: d}
	run.keysBase, _ = redisKeys(t, rdb, prefix)

	start := time.Now()
	live := rg.mint(t, "load", n)
	run.minted = time.Since(start)
	shots := mixedShots(rg.URL, live, rg.mintRevoked(t, "revoked", 10))
	var sessionKeys int
	run.keysMint, sessionKeys = redisKeys(t, rdb, prefix)
	if sessionKeys != n {
		t.Fatalf("%d session keys in Redis after minting %d sessions", sessionKeys, n)
	}

	for i := range run.res {
		cpu0 := processCPU(t)
		l := startLoad(t, rg.URL, shots, loadOptions{workers: workers, maxRequests: 50_000_000, maxTime: d})
		time.Sleep(d)
		samples := l.stop()
		cpu := processCPU(t) - cpu0
		expectSafe(t, samples)
		expectStatuses(t, fmt.Sprintf("phase %d", i+1), samples, normal, 100)
		ok := notKind(samples, "cancelled")
		r := &run.res[i]
		*r = phaseResult{requests: len(ok), rate: float64(len(ok)) / d.Seconds(),
			p50: percentile(ok, .5), p99: percentile(ok, .99), max: maxLatency(ok)}
		if len(ok) > 0 {
			r.cpuPerReq = cpu / time.Duration(len(ok))
		}
		r.goroutines, r.idleConns = quietGoroutines()
		r.heap = heapInuse()
		r.keys, _ = redisKeys(t, rdb, prefix)
	}
	res := run.res
	if g0, g1 := res[0].goroutines, res[1].goroutines; g1 > g0+3 {
		t.Errorf("goroutines grew between two equal phases: %d after the first, %d after the second", g0, g1)
	}
	for i, r := range res {
		// Per connection: the load client's two loops and the gateway's server side; the
		// gateway's two loops and the upstream's server side.
		if r.idleConns > 6*workers+10 {
			t.Errorf("phase %d left %d idle-connection goroutines for %d workers", i+1, r.idleConns, workers)
		}
		if r.keys != run.keysMint { // authenticated traffic writes no key (no touch within 5m)
			t.Errorf("phase %d left %d keys in Redis, %d before the load", i+1, r.keys, run.keysMint)
		}
	}
	if h0, h1 := res[0].heap, res[1].heap; h1 > h0+h0/2+8*mib {
		t.Errorf("heap grew between two equal phases: %d MiB after the first, %d MiB after the second", h0/mib, h1/mib)
	}
	// Throughput follows what else the (shared) machine runs; the CPU time this process spends
	// per request does not, so a gateway that slows down shows there. Loose: GC and the race
	// detector's costs vary.
	if c0, c1 := res[0].cpuPerReq, res[1].cpuPerReq; c1 > 3*c0 {
		t.Errorf("CPU time per request grew from %v to %v between two equal phases", c0, c1)
	}

	expireLoad(t, rg, rdb, prefix, live, &run)

	report := loadReport(run)
	t.Log("\n" + report)
	if path := os.Getenv("AUTHGATE_LOAD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Errorf("write AUTHGATE_LOAD_REPORT: %v", err)
		}
	}
}

// expireLoad lets the load's sessions expire: their ExpiresAt is moved a few seconds ahead
// and nothing else is done to them. Redis must drop every session key by TTL, the gateway must
// refuse their cookies, and every key left must carry a TTL that ends it.
func expireLoad(t *testing.T, rg *rig, rdb *redis.Client, prefix string, live []testSession, run *loadRun) {
	t.Helper()
	expiry := minLoadExpiry + 2*run.minted // the updates cost about what minting did, or less
	expiresAt := time.Now().Add(expiry)
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		nfail atomic.Int64
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(live); i = int(next.Add(1)) - 1 {
				rec := *live[i].rec
				rec.ExpiresAt = expiresAt
				if err := rg.store.Update(context.Background(), &rec); err != nil {
					nfail.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := nfail.Load(); n > 0 {
		t.Fatalf("%d of %d sessions could not be updated", n, len(live))
	}
	if time.Now().After(expiresAt) {
		t.Fatalf("updating %d sessions took more than %v: they expired before the check", len(live), expiry)
	}
	var sessionKeys int
	if _, ok := waitFor(expiry+30*time.Second, func() bool {
		_, sessionKeys = redisKeys(t, rdb, prefix)
		return sessionKeys == 0
	}); !ok {
		t.Fatalf("%d of %d session keys still in Redis %v after they expired", sessionKeys, len(live), time.Since(expiresAt).Round(time.Millisecond))
	}
	run.expired = time.Since(expiresAt)

	// The gateway refuses every expired cookie (a sample: one session in 50).
	for i := 0; i < len(live); i += 50 {
		s := shot{kind: "expired", method: http.MethodGet, path: "/app/items", cookie: live[i].cookie}
		if code, _ := sendOne(rg.URL, s, 10*time.Second); code != http.StatusUnauthorized {
			t.Fatalf("expired session %s: %d, want 401", live[i].user, code)
		}
	}

	// What is left is index keys, each on a TTL: the count returns to the baseline by itself.
	keys := keysOf(t, rdb, prefix)
	run.keysLeft = len(keys)
	if want := run.keysMint - len(live); run.keysLeft != want {
		t.Errorf("%d keys left after expiry, want %d (%d after minting less the %d sessions)", run.keysLeft, want, run.keysMint, len(live))
	}
	limit := session.DefaultAbsoluteTimeout + time.Minute
	cmds := make([]*redis.DurationCmd, len(keys))
	if _, err := rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.PTTL(context.Background(), k)
		}
		return nil
	}); err != nil {
		t.Fatalf("PTTL: %v", err)
	}
	bad := 0
	for i, c := range cmds {
		if ttl := c.Val(); ttl <= 0 || ttl > limit {
			if bad++; bad <= 5 {
				t.Errorf("key %s left with TTL %v, want (0, %v]", keys[i], ttl, limit)
			}
		}
		if strings.HasPrefix(keys[i], prefix+"s:") {
			t.Errorf("session key %s left after expiry", keys[i])
		}
	}
	run.indexLeft = len(keys) - bad
}

// processCPU is the user and system CPU time this process has used (gateway, upstream and
// load client all run in it).
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisKeys counts the keys of the (private) Redis, and those of them that are sessions.
func redisKeys(t *testing.T, rdb *redis.Client, prefix string) (all, sessions int) {
	t.Helper()
	for _, k := range keysOf(t, rdb, "") {
		all++
		if strings.HasPrefix(k, prefix+"s:") {
			sessions++
		}
	}
	return all, sessions
}

// quietGoroutines lets the finished phase's connections close and returns the lowest
// busyGoroutines seen over half a second.
func quietGoroutines() (busy, idleConns int) {
	time.Sleep(300 * time.Millisecond)
	busy, idleConns = busyGoroutines()
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		if b, c := busyGoroutines(); b < busy {
			busy, idleConns = b, c
		}
	}
	return busy, idleConns
}

// loadReport renders the figures as Markdown for docs/benchmarks.md.
func loadReport(run loadRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Load test (test/faults TestLoad): %d sessions created through the session store in %v, "+
		"%d concurrent workers (one connection each), mixed authenticated GET and same-origin POST plus refused requests, "+
		"two phases of %v each; gateway, private Redis (session store, cache on), upstream and client on one machine "+
		"(%d CPUs, %s, race detector %v).\n\n", run.sessions, run.minted.Round(time.Millisecond), run.workers, run.phase,
		runtime.GOMAXPROCS(0), runtime.Version(), map[bool]string{true: "on", false: "off"}[raceEnabled])
	b.WriteString("| phase | requests | req/s | p50 | p99 | max | test process CPU / req | goroutines after (+ idle keep-alive) | heap in use after | Redis keys after |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range run.res {
		fmt.Fprintf(&b, "| %d | %d | %.0f | %v | %v | %v | %v | %d (+%d) | %.1f MiB | %d |\n", i+1, r.requests, r.rate,
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.max.Round(time.Millisecond),
			r.cpuPerReq.Round(time.Microsecond), r.goroutines, r.idleConns, float64(r.heap)/mib, r.keys)
	}
	fmt.Fprintf(&b, "\nRedis keys: %d before the sessions, %d after; once the sessions expired, every session key "+
		"was gone by TTL %v after expiry, leaving %d index keys, each with a TTL of at most AbsoluteTimeout+1m.\n",
		run.keysBase, run.keysMint, run.expired.Round(10*time.Millisecond), run.indexLeft)
	return b.String()
}
