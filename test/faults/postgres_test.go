package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/users"
)

// TestPostgresUnreachableDuringLogins cuts, then stalls, the link to the user database under
// traffic: logins get a 503 page within the store timeout and no session, while the sessions
// that exist keep being proxied (the request path never reads the database); once the link is
// back, logins work again without a restart.
func TestPostgresUnreachableDuringLogins(t *testing.T) {
	dbURL := fixture.Postgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	px := fixture.StartTCPProxy(t, target)
	u.Host = px.Addr
	st, err := users.Open(context.Background(), users.Options{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rg := startRig(t, rigOptions{users: st})
	alice, aliceID := rg.loginUser(t, "alice")
	live := append(rg.mint(t, "pg", 8), testSession{user: aliceID, cookie: rg.cookieOf(t, alice)})
	l := startLoad(t, rg.URL, mixedShots(rg.URL, live, nil),
		loadOptions{workers: 6, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 40 * time.Second})
	time.Sleep(500 * time.Millisecond)

	faults := []struct {
		name    string
		apply   func()
		maxTime time.Duration // the login's 503 must come within this
	}{
		{name: "connection reset", apply: px.Cut, maxTime: 2 * time.Second},
		{name: "partition (nothing answers)", apply: px.Blackhole, maxTime: 5 * time.Second}, // the 3s store timeout, plus margin
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			before := sessionCount(t, rg)
			f.apply()
			c := rg.Client()
			start := time.Now()
			resp := rg.Login(t, c, "/after-login", "bob", "bob")
			took := time.Since(start)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Logins are temporarily unavailable") {
				t.Errorf("login with the database down: %d %q", resp.StatusCode, body)
			}
			if took > f.maxTime {
				t.Errorf("login with the database down took %v, want < %v", took, f.maxTime)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == fixture.CookieName && ck.Value != "" {
					t.Error("a failed login set a session cookie")
				}
			}
			if after := sessionCount(t, rg); after != before {
				t.Errorf("sessions before the failed login %d, after %d", before, after)
			}
			px.Restore()
			recovered, ok := waitFor(10*time.Second, func() bool {
				resp := rg.Login(t, rg.Client(), "/", "bob", "bob")
				resp.Body.Close()
				return resp.StatusCode == http.StatusFound
			})
			if !ok {
				t.Errorf("no login within 10s of the database being back")
			}
			t.Logf("%s: failed login answered in %v; a login worked %v after the link came back", f.name, took, recovered)
		})
	}
	time.Sleep(300 * time.Millisecond)
	samples := l.stop()
	expectSafe(t, samples)
	// The database is only on the login path: existing sessions were served all along.
	expectStatuses(t, "whole run", samples, normal, 50)
	if n := rg.logs.count("request failed", "user_store_unavailable"); n < 2 {
		t.Errorf("%d log lines for the unreachable user store, want one per failed login", n)
	}
	t.Logf("%d requests while the database came and went, p50 %v p99 %v: %s",
		len(samples), percentile(samples, .5), percentile(samples, .99), tally(samples))
}

// sessionCount is the number of sessions in the rig's store.
func sessionCount(t *testing.T, rg *rig) int {
	t.Helper()
	list, err := rg.store.List(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
