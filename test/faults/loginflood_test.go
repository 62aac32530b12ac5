package faults

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
)

// TestLoginFloodBounded floods /.auth/login from one IP against a gateway with the production
// limits (60 a minute per IP, 20 flows per browser) on a private Redis: the flood is cut at
// 60 with 429 and Retry-After, the keys it leaves in Redis are bounded by the limit, one
// browser gets at most 20 flows, and every key of the gateway carries a TTL (flows, the
// per-browser counter, the session and its indexes), so Redis returns to its baseline by
// itself.
func TestLoginFloodBounded(t *testing.T) {
	rs := fixture.StartRedisServer(t, fixture.RedisServerOptions{})
	const prefix = "authgate-flood:"
	clock := &fixture.Clock{}
	rg := startRig(t, rigOptions{store: redisStore(t, rs.Addr, prefix), mutate: func(o *gateway.Options) {
		o.LoginRateLimit, o.LoginFlowsPerBrowser = 60, gateway.DefaultLoginFlowsPerBrowser
		o.Now = clock.Now
	}})
	rdb := fixture.NewRedisClient(rs.Addr)
	t.Cleanup(func() { _ = rdb.Close() })
	baseline := len(keysOf(t, rdb, prefix))

	// A real login first: a session and its indexes in Redis (2 of the IP's 60 tokens).
	rg.loginUser(t, "alice")
	afterLogin := len(keysOf(t, rdb, prefix))
	if afterLogin <= baseline {
		t.Fatalf("a login left no keys (%d before, %d after): the TTL check below would prove nothing", baseline, afterLogin)
	}

	// A minute later the bucket is full again; the flood then happens at one instant.
	clock.Freeze(time.Now().Add(time.Minute))
	anon := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := 1; i <= 65; i++ {
		code, retry := getLogin(t, anon, rg.URL)
		switch {
		case i <= 60 && code != http.StatusFound:
			t.Fatalf("login %d of the flood: %d, want 302", i, code)
		case i > 60 && (code != http.StatusTooManyRequests || retry == ""):
			t.Fatalf("login %d of the flood: %d with Retry-After %q, want 429 with Retry-After", i, code, retry)
		}
	}
	for range 200 { // cookie-less: a fresh binding each time, bounded by the per-IP limit
		if code, _ := getLogin(t, anon, rg.URL); code != http.StatusTooManyRequests {
			t.Fatalf("flood beyond the limit: %d, want 429", code)
		}
	}
	if n := len(keysOf(t, rdb, prefix)); n > afterLogin+60 {
		t.Fatalf("%d keys after 265 cookie-less logins, want at most %d (one flow per allowed request)", n, afterLogin+60)
	}

	// One browser (one cookie jar), with a fresh IP budget: 20 flows, then 429.
	clock.Freeze(time.Now().Add(3 * time.Minute))
	browser := rg.Client()
	for i := 1; i <= 21; i++ {
		resp, err := browser.Get(rg.URL + "/.auth/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusFound
		if i == 21 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("login %d of one browser: %d, want %d", i, resp.StatusCode, want)
		}
	}

	// Every key of the gateway expires by itself: flows, counter, session, indexes.
	keys := keysOf(t, rdb, prefix)
	if len(keys) > afterLogin+60+21 {
		t.Fatalf("%d keys, want at most %d", len(keys), afterLogin+60+21)
	}
	for _, k := range keys {
		d, err := rdb.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 {
			t.Errorf("key %s has no TTL (%v): it would stay in Redis for ever", k, d)
		}
	}
	t.Logf("%d keys under %s (baseline %d, after one login %d), every one with a TTL", len(keys), prefix, baseline, afterLogin)
}

func getLogin(t *testing.T, c *http.Client, base string) (int, string) {
	t.Helper()
	resp, err := c.Get(base + "/.auth/login?return_to=/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// keysOf lists the keys under prefix with SCAN.
func keysOf(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	var out []string
	iter := rdb.Scan(context.Background(), 0, prefix+"*", 500).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}
