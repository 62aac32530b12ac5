package session

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeMono is an injected monotonic clock for the cache's health deadline.
type fakeMono struct {
	mu sync.Mutex
	d  time.Duration
}

func (f *fakeMono) now() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.d
}

func (f *fakeMono) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.d += d
}

func unitCache(t *testing.T, size int) (*cache, *fakeMono) {
	t.Helper()
	c := newCache(time.Minute, size)
	m := &fakeMono{}
	c.mono = m.now
	c.markHealthy(healthWindow)
	return c, m
}

func TestCacheHealthWindow(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    bool
	}{
		{name: "just after a frame", advance: 0, want: true},
		{name: "inside the window", advance: healthWindow - time.Millisecond, want: true},
		{name: "no frame for the window", advance: healthWindow},
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mono := unitCache(t, 10)
			rec := &Record{Handle: "h1"}
			if !c.fill(c.snapshot(), rec, 0, at) {
				t.Fatal("fill refused on a healthy cache")
			}
			mono.advance(tt.advance)
			if got := c.get([]byte("h1"), at) != nil; got != tt.want {
				t.Errorf("served = %v, want %v", got, tt.want)
			}
		})
	}
	c, _ := unitCache(t, 10)
	c.markUnhealthy()
	if c.fill(c.snapshot(), &Record{Handle: "h1"}, 0, at) {
		t.Error("fill accepted while unhealthy")
	}
}

// A record read from the backend before an invalidation must not be cached after it.
func TestCacheFillAfterInvalidation(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		invalidate func(c *cache)
	}{
		{name: "drop of another handle", invalidate: func(c *cache) { c.drop("other") }},
		{name: "drop of this handle", invalidate: func(c *cache) { c.drop("h1") }},
		{name: "reset after resubscribe", invalidate: func(c *cache) { c.reset() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := unitCache(t, 10)
			seq := c.snapshot() // loader starts its backend read
			tt.invalidate(c)    // a revocation arrives meanwhile
			if c.fill(seq, &Record{Handle: "h1"}, 0, at) || c.get([]byte("h1"), at) != nil {
				t.Error("stale read cached after an invalidation")
			}
			if !c.fill(c.snapshot(), &Record{Handle: "h1"}, 0, at) {
				t.Error("fresh read not cached")
			}
		})
	}
}

func TestRecordCloneSharesNothingMutable(t *testing.T) {
	orig := testRecord("alice")
	orig.Roles, orig.Groups = []string{"a", "b"}, []string{"c"}
	cp := orig.clone()
	if !reflect.DeepEqual(cp, orig) {
		t.Fatalf("clone differs: %+v", cp)
	}
	cp.Roles[0], cp.Groups[0] = "x", "y"
	cp.Roles = append(cp.Roles, "z")
	if orig.Roles[0] != "a" || orig.Groups[0] != "c" || len(orig.Roles) != 2 {
		t.Errorf("modifying the clone changed the original: %v %v", orig.Roles, orig.Groups)
	}
	if cp.Groups[0] != "y" {
		t.Errorf("append to Roles overwrote Groups: %v", cp.Groups)
	}
}

// TestGetAllocBudget fails when the per-request path allocates more than it does today, with 2
// of headroom. Measured (Get / Load): 12 / 8 on the memory backend; 6 / 0 on a warm Redis cache
// (the memo of verified cookie values spares the id; Load hands out the cached record itself,
// Get a copy in a new gorilla session); under -race (as CI runs it) up to 3 more, the
// detector dropping pooled buffers at random.
func TestGetAllocBudget(t *testing.T) {
	tests := []struct {
		name       string
		redis      bool
		cacheTTL   time.Duration
		load       bool // Load instead of Get
		budget     float64
		raceBudget float64
	}{
		{name: "memory", budget: 12 + 2, raceBudget: 15 + 2},
		{name: "redis warm cache", redis: true, cacheTTL: time.Hour, budget: 6 + 2, raceBudget: 9 + 2},
		{name: "Load memory", load: true, budget: 8 + 2, raceBudget: 11 + 2},
		{name: "Load redis warm cache", redis: true, cacheTTL: time.Hour, load: true, budget: 0 + 2, raceBudget: 3 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, req := benchStore(t, tt.redis, tt.cacheTTL)
			var failed bool
			allocs := testing.AllocsPerRun(500, func() {
				if tt.load {
					if rec, err := st.Load(req, st.CookieName()); err != nil || rec == nil {
						failed = true
					}
				} else if s, err := st.Get(req, st.CookieName()); err != nil || s.IsNew {
					failed = true
				}
			})
			if failed {
				t.Fatal("no session")
			}
			if tt.redis && !cached(st, handleOf(mustSessionID(t, st, req))) {
				t.Fatal("not measuring the warm-cache path")
			}
			budget := tt.budget
			if raceEnabled {
				budget = tt.raceBudget
			}
			t.Logf("%v allocs per call (race detector: %v)", allocs, raceEnabled)
			if allocs > budget {
				t.Errorf("allocates %v times, budget %v", allocs, budget)
			}
		})
	}
}

func mustSessionID(t *testing.T, st *Store, req *http.Request) string {
	t.Helper()
	s, err := st.Get(req, st.CookieName())
	if err != nil || s.IsNew {
		t.Fatalf("Get: %v", err)
	}
	return s.ID
}

// cookieValue must agree with net/http's parsing on which single cookie it finds.
func FuzzCookieValue(f *testing.F) {
	for _, seed := range []string{"a=1", "a=1; a=2", " a = \"x\" ", "b=1;a=\"", "a=x\\y", "a=;", ";;a=v;;", "a=\x7f", "a=1\r\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{header, "other=1"}
		want := r.CookiesNamed("a")
		got, n := cookieValue(r, "a")
		if n != len(want) || (n == 1 && got != want[0].Value) {
			t.Fatalf("cookieValue(%q) = %q, %d; net/http found %d", header, got, n, len(want))
		}
	})
}
