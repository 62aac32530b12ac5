package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shot is one kind of request the load client sends.
type shot struct {
	kind   string // live, revoked, anon, navigate, garbage, forged
	user   string // the session's user id (live), sent as hdrUser
	method string
	path   string
	cookie *http.Cookie
	hdr    map[string]string
}

// Normal answers, when nothing is wrong, for each kind of shot.
var normal = map[string][]int{
	"live":     {http.StatusOK},
	"revoked":  {http.StatusUnauthorized},
	"anon":     {http.StatusUnauthorized},
	"navigate": {http.StatusFound},
	"garbage":  {http.StatusUnauthorized},
	"forged":   {http.StatusUnauthorized},
}

// mixedShots builds the standard mix for a gateway at base: for every live session a GET and a
// same-origin POST; and requests that must never reach the upstream: revoked cookies, no
// cookie (API call and browser navigation), a garbage cookie, forged identity headers.
func mixedShots(base string, live, revoked []testSession) []shot {
	var out []shot
	for _, s := range live {
		out = append(out,
			shot{kind: "live", user: s.user, method: http.MethodGet, path: "/app/items?u=" + s.user, cookie: s.cookie},
			shot{kind: "live", user: s.user, method: http.MethodPost, path: "/app/items", cookie: s.cookie,
				hdr: map[string]string{"Origin": base, "Content-Type": "application/json"}})
	}
	for _, s := range revoked {
		out = append(out, shot{kind: "revoked", user: s.user, method: http.MethodGet, path: "/app/items", cookie: s.cookie})
	}
	someone := "nobody"
	if len(live) > 0 {
		someone = live[0].user
	}
	out = append(out,
		shot{kind: "anon", method: http.MethodGet, path: "/app/items"},
		shot{kind: "navigate", method: http.MethodGet, path: "/app/page", hdr: map[string]string{"Accept": "text/html"}},
		shot{kind: "garbage", method: http.MethodGet, path: "/app/items",
			cookie: &http.Cookie{Name: "authgate", Value: strings.Repeat("A", 60) + "|garbage"}},
		shot{kind: "forged", user: someone, method: http.MethodPost, path: "/app/items",
			hdr: map[string]string{"Origin": base, "X-Auth-User-Id": someone, "X-Auth-Subject": "sub-" + someone,
				"X_Auth_User_Id": someone, "x-auth-roles": "super_admin"}})
	return out
}

// sample is one request of the load client: when it started and ended (since the load
// started), its kind and status (0 when the transport failed).
type sample struct {
	kind       string
	start, end time.Duration
	status     int
}

func (s sample) latency() time.Duration { return s.end - s.start }

// loadOptions bounds a load run: it stops at max requests, after max time, or at Stop.
type loadOptions struct {
	workers     int
	pause       time.Duration // between two requests of a worker
	maxRequests int
	maxTime     time.Duration
	timeout     time.Duration // per request; default 10s
}

// load is a bounded load client against one gateway (loopback only).
type load struct {
	base   string
	shots  []shot
	opts   loadOptions
	client *http.Client
	t0     time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64

	mu      sync.Mutex
	samples []sample
}

func newLoadClient(workers int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, Proxy: nil}
	return &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// startLoad starts o.workers workers sending shots round-robin to base.
func startLoad(t *testing.T, base string, shots []shot, o loadOptions) *load {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.maxTime)
	l := &load{base: base, shots: shots, opts: o, client: newLoadClient(o.workers), t0: time.Now(), cancel: cancel}
	for w := 0; w < o.workers; w++ {
		l.wg.Add(1)
		go l.worker(ctx, w)
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// now is the time since the load started.
func (l *load) now() time.Duration { return time.Since(l.t0) }

func (l *load) worker(ctx context.Context, w int) {
	defer l.wg.Done()
	for k := 0; ctx.Err() == nil; k++ {
		if int(l.sent.Add(1)) > l.opts.maxRequests {
			return
		}
		s := l.shots[(w+k*l.opts.workers)%len(l.shots)]
		smp := l.do(ctx, s)
		l.mu.Lock()
		l.samples = append(l.samples, smp)
		l.mu.Unlock()
		if l.opts.pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(l.opts.pause):
			}
		}
	}
}

func (l *load) do(ctx context.Context, s shot) sample {
	ctx, cancel := context.WithTimeout(ctx, l.opts.timeout)
	defer cancel()
	var body io.Reader
	if s.method == http.MethodPost {
		body = strings.NewReader(`{"n":1}`)
	}
	req, _ := http.NewRequestWithContext(ctx, s.method, l.base+s.path, body)
	if s.cookie != nil {
		req.AddCookie(s.cookie)
	}
	for k, v := range s.hdr {
		req.Header[k] = []string{v} // as given: forged headers keep their odd spellings
	}
	req.Header.Set(hdrKind, s.kind)
	if s.user != "" {
		req.Header.Set(hdrUser, s.user)
	}
	smp := sample{kind: s.kind, start: l.now()}
	resp, err := l.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		smp.status = resp.StatusCode
	}
	if ctx.Err() != nil && smp.status == 0 { // stopped by us, not an answer
		smp.kind = "cancelled"
	}
	smp.end = l.now()
	return smp
}

// stop ends the run, waits for the workers and returns every sample. Safe to call twice.
func (l *load) stop() []sample {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

// snapshot returns the samples so far without stopping.
func (l *load) snapshot() []sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

// within returns the samples that started at or after from and ended at or before to.
func within(samples []sample, from, to time.Duration) []sample {
	var out []sample
	for _, s := range samples {
		if s.start >= from && s.end <= to && s.kind != "cancelled" {
			out = append(out, s)
		}
	}
	return out
}

// tally counts samples by kind and status, e.g. "live:200=40 live:503=12".
func tally(samples []sample) string {
	m := map[string]int{}
	for _, s := range samples {
		m[fmt.Sprintf("%s:%d", s.kind, s.status)]++
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// expectStatuses fails the test for every sample whose status is not allowed for its kind
// (a kind missing from want allows nothing), and when fewer than minLive live samples are in.
func expectStatuses(t *testing.T, phase string, samples []sample, want map[string][]int, minLive int) {
	t.Helper()
	bad, live := map[string]int{}, 0
	for _, s := range samples {
		if s.kind == "cancelled" {
			continue
		}
		if s.kind == "live" {
			live++
		}
		if !slices.Contains(want[s.kind], s.status) {
			bad[fmt.Sprintf("%s:%d", s.kind, s.status)]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s: unexpected statuses %v (all: %s)", phase, bad, tally(samples))
	}
	if live < minLive {
		t.Errorf("%s: only %d live requests in the window, want at least %d (all: %s)", phase, live, minLive, tally(samples))
	}
}

// expectSafe checks what must hold at every moment, fault or not: no 500, no transport error,
// and a request without a live session never answered 2xx (the guard checks the upstream side).
func expectSafe(t *testing.T, samples []sample) {
	t.Helper()
	bad := map[string]int{}
	for _, s := range samples {
		switch {
		case s.kind == "cancelled":
		case s.status == 0, s.status == http.StatusInternalServerError:
			bad[fmt.Sprintf("%s:%d", s.kind, s.status)]++
		case s.kind != "live" && s.status < 300:
			bad[fmt.Sprintf("%s:%d", s.kind, s.status)]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("unsafe answers: %v (all: %s)", bad, tally(samples))
	}
}

// recoveryOf returns when live requests get okStatus again after at: the end of the first
// such answer to a live request that started after at, and whether every live request that
// started after that got okStatus too.
func recoveryOf(samples []sample, at time.Duration, okStatus int) (recovered time.Duration, ok bool, stable bool) {
	first := time.Duration(-1)
	for _, s := range samples {
		if s.kind == "live" && s.start >= at && s.status == okStatus && (first < 0 || s.end < first) {
			first = s.end
		}
	}
	if first < 0 {
		return 0, false, false
	}
	for _, s := range samples {
		if s.kind == "live" && s.start >= first && s.status != okStatus {
			return first - at, true, false
		}
	}
	return first - at, true, true
}

// percentile of the latencies of samples (q in [0,1]).
func percentile(samples []sample, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	d := make([]time.Duration, len(samples))
	for i, s := range samples {
		d[i] = s.latency()
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func maxLatency(samples []sample) time.Duration { return percentile(samples, 1) }

// busyGoroutines counts the goroutines of this process except those of idle keep-alive HTTP
// connections (client read/write loops, server connections not in a handler), whose number
// follows the connection pools (bounded by the concurrency), and those of the test's fault
// tools (fixture.TCPProxy). A leak, or requests piling up, shows up here. idleConns is the
// number of idle-connection goroutines left out.
func busyGoroutines() (busy, idleConns int) {
	n, idle := goroutines()
	return n - idle, idle
}

func goroutines() (total, idleConns int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) == "" || strings.Contains(g, "fixture.(*TCPProxy)") {
			continue
		}
		total++
		if strings.Contains(g, "net/http.(*persistConn).readLoop") || strings.Contains(g, "net/http.(*persistConn).writeLoop") ||
			(strings.Contains(g, "net/http.(*conn).serve") && !strings.Contains(g, "ServeHTTP")) {
			idleConns++
		}
	}
	return total, idleConns
}

// idleGoroutines warms the gateway up with a short burst of shots from 8 workers, lets it go
// idle and returns busyGoroutines.
func idleGoroutines(t *testing.T, base string, shots []shot) int {
	t.Helper()
	l := startLoad(t, base, shots, loadOptions{workers: 8, maxRequests: 400, maxTime: 2 * time.Second})
	time.Sleep(300 * time.Millisecond)
	l.stop()
	time.Sleep(200 * time.Millisecond)
	n, _ := busyGoroutines()
	return n
}

// notKind returns the samples whose kind is none of kinds.
func notKind(samples []sample, kinds ...string) []sample {
	var out []sample
	for _, s := range samples {
		if !slices.Contains(kinds, s.kind) {
			out = append(out, s)
		}
	}
	return out
}

// watchGoroutines samples busyGoroutines every 100ms for d and returns the highest count.
func watchGoroutines(d time.Duration) int {
	peak := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		n, _ := busyGoroutines()
		peak = max(peak, n)
	}
	return peak
}

// settleGoroutines waits up to d for busyGoroutines to come back to at most baseline+margin
// and returns the last count seen.
func settleGoroutines(baseline, margin int, d time.Duration) (int, bool) {
	n, _ := busyGoroutines()
	_, ok := waitFor(d, func() bool {
		n, _ = busyGoroutines()
		return n <= baseline+margin
	})
	return n, ok
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// me is the JSON of /.auth/me.
type me struct {
	UserID string `json:"user_id"`
	Sub    string `json:"sub"`
}

func meOf(t *testing.T, c *http.Client, base string) me {
	t.Helper()
	resp, err := c.Get(base + "/.auth/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m me
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil || m.UserID == "" {
		t.Fatalf("/.auth/me: %d", resp.StatusCode)
	}
	return m
}

// sendOne sends one shot with a fresh client and returns the status (0 on transport error) and
// how long it took.
func sendOne(base string, s shot, timeout time.Duration) (int, time.Duration) {
	l := &load{base: base, opts: loadOptions{timeout: timeout}, client: newLoadClient(1), t0: time.Now()}
	defer l.client.CloseIdleConnections()
	smp := l.do(context.Background(), s)
	return smp.status, smp.latency()
}

const mib = 1 << 20
