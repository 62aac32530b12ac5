package faults

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/test/fixture"
)

// cacheGrace is how long after Redis goes away a live session may still be served from the
// session cache (session package: the invalidation subscription's health window is 750ms).
// Only sessions that were live a moment ago can be served that way.
const cacheGrace = time.Second

// TestRedisRestartMidTraffic stops a private Redis under traffic and starts it again: while it
// is down every request that needs a session gets 503 (never 500, never let through), requests
// without a session are still refused with 401/302, logins get 503; once it is back the
// gateway recovers by itself, without a restart: with persistence the old sessions work again,
// without it they are unauthenticated; a new login works in both cases.
func TestRedisRestartMidTraffic(t *testing.T) {
	tests := []struct {
		name       string
		persistent bool
		oldAfter   int // what live sessions made before the restart get once Redis is back
	}{
		{name: "append-only file: sessions survive", persistent: true, oldAfter: http.StatusOK},
		{name: "no persistence: sessions are lost", persistent: false, oldAfter: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := fixture.StartRedisServer(t, fixture.RedisServerOptions{Persistent: tt.persistent})
			rg := startRig(t, rigOptions{store: redisStore(t, rs.Addr, "authgate-faults:")})
			live, revoked := rg.mint(t, "redis", 12), rg.mintRevoked(t, "revoked", 4)
			alice, aliceID := rg.loginUser(t, "alice")

			l := startLoad(t, rg.URL, mixedShots(rg.URL, live, revoked),
				loadOptions{workers: 8, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 40 * time.Second})
			time.Sleep(time.Second)
			stopAt := l.now()
			rs.Stop()
			stopped := l.now()

			// While Redis is down: logins and /.auth/me fail closed with 503, quickly.
			probeDown(t, rg, alice)
			time.Sleep(2 * time.Second)

			startAt := l.now()
			rs.Start()
			started := l.now()
			okStatus := tt.oldAfter
			if _, done := waitFor(10*time.Second, func() bool {
				_, ok, _ := recoveryOf(l.snapshot(), started, okStatus)
				return ok
			}); !done {
				t.Errorf("live sessions did not get %d within 10s of Redis being back", okStatus)
			}
			time.Sleep(time.Second)
			samples := l.stop()

			expectSafe(t, samples)
			expectStatuses(t, "before the stop", within(samples, 0, stopAt), normal, 20)
			down := within(samples, stopped+cacheGrace, startAt)
			expectStatuses(t, "Redis down", down, map[string][]int{
				"live": {http.StatusServiceUnavailable}, "revoked": {http.StatusServiceUnavailable},
				"anon": {http.StatusUnauthorized}, "navigate": {http.StatusFound},
				"garbage": {http.StatusUnauthorized}, "forged": {http.StatusUnauthorized},
			}, 10)
			if d := maxLatency(down); d > 3*time.Second {
				t.Errorf("slowest answer while Redis was down: %v, want < 3s", d)
			}
			rec, ok, stable := recoveryOf(samples, started, okStatus)
			if !ok || !stable || rec > 3*time.Second {
				t.Errorf("recovery after %v: ok=%v stable=%v, want within 3s (after: %s)", rec, ok, stable, tally(within(samples, started, l.now())))
			}
			after := normal
			if okStatus != http.StatusOK {
				after = map[string][]int{"live": {okStatus}, "revoked": {http.StatusUnauthorized},
					"anon": {http.StatusUnauthorized}, "navigate": {http.StatusFound},
					"garbage": {http.StatusUnauthorized}, "forged": {http.StatusUnauthorized}}
			}
			expectStatuses(t, "Redis back", within(samples, started+rec, l.now()), after, 10)
			if n := rg.logs.count("request failed", "session_store_unavailable"); n == 0 {
				t.Error("no log line for the unreachable session store")
			}

			// A new login works without restarting the gateway, and so (or not) does the old one.
			bob, bobID := rg.loginUser(t, "bob")
			if st := status(t, bob, rg.URL+"/app/bob", "application/json", bobID); st != http.StatusOK {
				t.Errorf("new session after the restart: %d", st)
			}
			wantOld := http.StatusOK
			if !tt.persistent {
				wantOld = http.StatusFound // a browser navigation without a session goes to the login
			}
			if st := status(t, alice, rg.URL+"/app/alice", "text/html", aliceID); st != wantOld {
				t.Errorf("alice's session from before the restart: %d, want %d", st, wantOld)
			}
			t.Logf("redis down %v (stop took %v, start took %v); recovered %v after start; down: p50 %v max %v; %d requests: %s",
				startAt-stopAt, stopped-stopAt, started-startAt, rec, percentile(down, .5), maxLatency(down), len(samples), tally(samples))
		})
	}
}

// probeDown checks the gateway's own endpoints while Redis is down.
func probeDown(t *testing.T, rg *rig, alice *http.Client) {
	t.Helper()
	start := time.Now()
	if st := status(t, rg.Client(), rg.URL+"/.auth/login?return_to=/x", "text/html", ""); st != http.StatusServiceUnavailable {
		t.Errorf("login while Redis is down: %d, want 503", st)
	}
	if st := status(t, alice, rg.URL+"/.auth/me", "application/json", ""); st != http.StatusServiceUnavailable {
		t.Errorf("/.auth/me while Redis is down: %d, want 503", st)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("two requests while Redis is down took %v", d)
	}
}

// impatientTotal is how many requests TestRedisSlow's impatient clients send.
const impatientTotal = 200

// TestRedisSlow puts Redis behind a proxy that delays every packet far beyond the client
// timeouts: every request still gets an answer quickly (503 fail closed, or 200 from a session
// read a moment ago), goroutines do not pile up, and once Redis is fast again everything
// recovers by itself.
func TestRedisSlow(t *testing.T) {
	shared, prefix := fixture.Redis(t) // the key prefix of this test; the shared Redis is never slowed
	px := fixture.StartTCPProxy(t, shared.Options().Addr)
	opts := *shared.Options() // same credentials and database, through the proxy, timeouts as cmd/authgate
	opts.Addr, opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = px.Addr, 2*time.Second, time.Second, time.Second
	rg := startRig(t, rigOptions{store: storeOn(t, redis.NewClient(&opts), prefix)})
	live, revoked := rg.mint(t, "slow", 12), rg.mintRevoked(t, "revoked", 4)

	shots := mixedShots(rg.URL, live, revoked)
	idle := idleGoroutines(t, rg.URL, shots)
	l := startLoad(t, rg.URL, shots,
		loadOptions{workers: 8, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 40 * time.Second})
	time.Sleep(time.Second)
	steady := watchGoroutines(300 * time.Millisecond)
	slowAt := l.now()
	px.SetDelay(2500 * time.Millisecond)
	impatient := make(chan []int, 1)
	go func() { impatient <- impatientClients(rg.URL, live, impatientTotal/10, 10) }()
	peak := watchGoroutines(4 * time.Second)
	fastAt := l.now()
	px.SetDelay(0)
	if _, done := waitFor(10*time.Second, func() bool {
		_, ok, _ := recoveryOf(l.snapshot(), fastAt, http.StatusOK)
		return ok
	}); !done {
		t.Error("no live request succeeded within 10s of Redis being fast again")
	}
	time.Sleep(time.Second)
	samples := l.stop()

	expectSafe(t, samples)
	expectStatuses(t, "before", within(samples, 0, slowAt), normal, 20)
	if st := <-impatient; len(st) != 0 {
		t.Errorf("impatient clients got answers they should not: %v", st)
	}
	slow := within(samples, slowAt+50*time.Millisecond, fastAt)
	expectStatuses(t, "Redis slow", slow, map[string][]int{
		"live": {http.StatusOK, http.StatusServiceUnavailable}, "revoked": {http.StatusServiceUnavailable},
		"anon": {http.StatusUnauthorized}, "navigate": {http.StatusFound},
		"garbage": {http.StatusUnauthorized}, "forged": {http.StatusUnauthorized},
	}, 5)
	if n := countStatus(within(samples, slowAt+cacheGrace, fastAt), "live", http.StatusServiceUnavailable); n == 0 {
		t.Error("no live request got 503 while Redis was slow: the fault did not show")
	}
	if d := maxLatency(samples); d > 3*time.Second {
		t.Errorf("slowest answer %v, want < 3s", d)
	}
	if d := maxLatency(notKind(slow, "live", "revoked")); d > time.Second {
		t.Errorf("requests that need no session lookup took up to %v while Redis was slow", d)
	}
	rec, ok, stable := recoveryOf(samples, fastAt, http.StatusOK)
	if !ok || !stable {
		t.Errorf("recovery: ok=%v stable=%v (after: %s)", ok, stable, tally(within(samples, fastAt, l.now())))
	}
	// Requests abandoned by impatient clients hold their goroutine until the store timeout
	// (2s) at most: a bounded number, all gone once Redis is fast again.
	if peak > steady+2*impatientTotal+32 {
		t.Errorf("goroutines piled up while Redis was slow: %d at the peak, %d before", peak, steady)
	}
	end, settled := settleGoroutines(idle, 4, 10*time.Second)
	if !settled {
		t.Errorf("goroutines after the fault: %d, before the load: %d", end, idle)
	}
	t.Logf("slow Redis (2.5s per packet) for %v: p50 %v p99 %v max %v; recovered %v after; goroutines idle %d, steady %d, peak %d, end %d; %s",
		fastAt-slowAt, percentile(slow, .5), percentile(slow, .99), maxLatency(slow), rec, idle, steady, peak, end, tally(slow))
}

// impatientClients sends rounds of n concurrent requests of live sessions that give up after
// 100ms, as browsers and load balancers with short timeouts do while Redis is slow, and
// returns any status that is neither 200 nor 503 (most of them get no answer at all).
func impatientClients(base string, live []testSession, n, rounds int) []int {
	var mu sync.Mutex
	var odd []int
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			s := live[(r*n+i)%len(live)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _ := sendOne(base, shot{kind: "live", user: s.user, method: http.MethodGet, path: "/app/x", cookie: s.cookie},
					100*time.Millisecond)
				if st != 0 && st != http.StatusOK && st != http.StatusServiceUnavailable {
					mu.Lock()
					odd = append(odd, st)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	return odd
}

// status sends a GET with the given Accept and returns the status. user is the user id of the
// client's live session, or "" when the request must not reach the upstream.
func status(t *testing.T, c *http.Client, u, accept, user string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", accept)
	req.Header.Set(hdrKind, "probe")
	if user != "" {
		req.Header.Set(hdrKind, "live")
		req.Header.Set(hdrUser, user)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func countStatus(samples []sample, kind string, code int) int {
	n := 0
	for _, s := range samples {
		if s.kind == kind && s.status == code {
			n++
		}
	}
	return n
}
