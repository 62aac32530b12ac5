package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// fakeClock is an injected clock moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestIPLimiter(t *testing.T) {
	tests := []struct {
		name      string
		perMin    int
		requests  int           // sent at once
		then      time.Duration // clock moved after them
		wantOK    int           // of requests, how many pass
		wantAfter bool          // whether one more request passes after then
		wantWait  time.Duration // the wait reported for the first refused request
	}{
		{name: "burst of the limit passes", perMin: 60, requests: 60, wantOK: 60, then: 0, wantAfter: false, wantWait: time.Second},
		{name: "beyond the limit refused", perMin: 60, requests: 65, wantOK: 60, then: 500 * time.Millisecond, wantAfter: false, wantWait: time.Second},
		{name: "one token back after 1s at 60/min", perMin: 60, requests: 61, wantOK: 60, then: time.Second, wantAfter: true, wantWait: time.Second},
		{name: "slow limit waits long", perMin: 2, requests: 3, wantOK: 2, then: 29 * time.Second, wantAfter: false, wantWait: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			l := newIPLimiter(tt.perMin, 10)
			ok, firstWait := 0, time.Duration(-1)
			for range tt.requests {
				pass, wait := l.allow("192.0.2.1", clock.now())
				if pass {
					ok++
				} else if firstWait < 0 {
					firstWait = wait
				}
			}
			if ok != tt.wantOK {
				t.Fatalf("%d of %d passed, want %d", ok, tt.requests, tt.wantOK)
			}
			if tt.requests > tt.wantOK && (firstWait <= 0 || firstWait > tt.wantWait) {
				t.Fatalf("wait %v, want within (0, %v]", firstWait, tt.wantWait)
			}
			if pass, _ := l.allow("192.0.2.2", clock.now()); !pass {
				t.Fatal("another IP must have its own bucket")
			}
			clock.advance(tt.then)
			if pass, _ := l.allow("192.0.2.1", clock.now()); pass != tt.wantAfter {
				t.Fatalf("after %v: pass %v, want %v", tt.then, pass, tt.wantAfter)
			}
		})
	}
}

func TestIPLimiterBounded(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newIPLimiter(1, 100)
	l.allow("hot", clock.now()) // spends hot's only token
	for i := range 1000 {
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), clock.now())
		if i%50 == 0 {
			if pass, _ := l.allow("hot", clock.now()); pass {
				t.Fatal("a recently used IP must keep its (empty) bucket")
			}
		}
	}
	if n := l.size(); n != 100 {
		t.Fatalf("%d IPs tracked, want the cap 100", n)
	}
}

// TestRateLimitMiddleware checks the 429 answer and that the limit is per client IP as
// clientIP sees it (X-Forwarded-For believed only from a trusted proxy).
func TestRateLimitMiddleware(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := &Gateway{
		opts: Options{LoginRateLimit: 2, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		log:  slog.New(slog.DiscardHandler), now: clock.now,
	}
	h := g.rateLimit()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusFound)
	}))
	send := func(peer, xff string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/.auth/login", nil)
		r.RemoteAddr = peer + ":1234"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name, peer, xff string
		want            int
	}{
		{name: "first", peer: "192.0.2.1", want: http.StatusFound},
		{name: "second", peer: "192.0.2.1", want: http.StatusFound},
		{name: "third refused", peer: "192.0.2.1", want: http.StatusTooManyRequests},
		{name: "spoofed XFF from an untrusted peer does not help", peer: "192.0.2.1", xff: "198.51.100.7", want: http.StatusTooManyRequests},
		{name: "client behind a trusted proxy has its own budget", peer: "10.1.1.1", xff: "192.0.2.1, 198.51.100.8", want: http.StatusFound},
		{name: "the proxied client's second", peer: "10.2.2.2", xff: "198.51.100.8", want: http.StatusFound},
		{name: "the proxied client's third refused", peer: "10.1.1.1", xff: "198.51.100.8", want: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		w := send(tt.peer, tt.xff)
		if w.Code != tt.want {
			t.Fatalf("%s: status %d, want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == http.StatusTooManyRequests {
			if ra := w.Header().Get("Retry-After"); ra != "30" {
				t.Fatalf("%s: Retry-After %q, want 30 (one token at 2/min)", tt.name, ra)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s: Content-Type %q", tt.name, ct)
			}
		}
	}
	clock.advance(30 * time.Second)
	if w := send("192.0.2.1", ""); w.Code != http.StatusFound {
		t.Fatalf("after Retry-After: status %d, want 302", w.Code)
	}
	g.opts.LoginRateLimit = 0
	off := g.rateLimit()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 100 {
		w := httptest.NewRecorder()
		off.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.auth/login", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("limit 0 must disable the limiter, got %d", w.Code)
		}
	}
}

// countingSessions is a Sessions whose only working method is CountFlow.
type countingSessions struct {
	Sessions
	n map[string]int64
}

func (c *countingSessions) CountFlow(_ context.Context, binding string, _ time.Duration) (int64, error) {
	c.n[binding]++
	return c.n[binding], nil
}

func TestCapFlows(t *testing.T) {
	store := &countingSessions{n: map[string]int64{}}
	g := &Gateway{opts: Options{Sessions: store, LoginFlowsPerBrowser: 3}, txCookie: "ag-tx"}
	const binding = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	try := func(cookie bool) error {
		r := httptest.NewRequest(http.MethodGet, "/.auth/login", nil)
		if cookie {
			r.AddCookie(&http.Cookie{Name: "ag-tx", Value: binding})
		}
		return g.capFlows(context.Background(), r, httptest.NewRecorder(), binding)
	}
	// The browser's first flow made the cookie (not counted); flows 2 and 3 bring it back.
	for i := 2; i <= 3; i++ {
		if err := try(true); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	err := try(true)
	if he, ok := err.(*httpError); !ok || he.status != http.StatusTooManyRequests || he.code != "too_many_requests" {
		t.Fatalf("4th flow of one browser: %v, want 429 too_many_requests", err)
	}
	for range 10 {
		if err := try(false); err != nil {
			t.Fatalf("a binding the browser did not send must not be counted: %v", err)
		}
	}
	if len(store.n) != 1 {
		t.Fatalf("%d counters, want 1 (fresh bindings are not counted)", len(store.n))
	}
}
