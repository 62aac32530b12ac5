package faults

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
)

// TestIdPDownBeforeDiscovery starts the gateway while the IdP cannot be reached: the login
// answers 503 at once (and keeps answering it, without hammering the IdP), existing sessions
// keep being proxied, and once the IdP is back the login works without a restart.
func TestIdPDownBeforeDiscovery(t *testing.T) {
	op, px := fixture.StartOPBehindProxy(t)
	px.Cut()
	rg := startRig(t, rigOptions{issuer: op.Issuer, secret: op.ClientSecret})
	live := rg.mint(t, "idp", 8)
	l := startLoad(t, rg.URL, mixedShots(rg.URL, live, nil),
		loadOptions{workers: 6, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 40 * time.Second})

	for i := 0; i < 3; i++ {
		st, body, took := getPage(t, rg.Client(), rg.URL+"/.auth/login?return_to=/x")
		if st != http.StatusServiceUnavailable || !strings.Contains(body, "identity provider") {
			t.Errorf("login #%d with the IdP down: %d %q", i, st, body)
		}
		if took > 2*time.Second {
			t.Errorf("login #%d with the IdP down took %v", i, took)
		}
	}
	accepted := px.Accepted()
	px.Restore()
	recovered, ok := waitFor(10*time.Second, func() bool {
		st, _, _ := getPage(t, rg.Client(), rg.URL+"/.auth/login?return_to=/x")
		return st == http.StatusFound
	})
	if !ok {
		t.Fatal("login still failing 10s after the IdP came back")
	}
	if accepted > 2 {
		t.Errorf("%d connections to the IdP for 3 logins within the discovery back-off", accepted)
	}
	rg.loginUser(t, "alice")
	samples := l.stop()
	expectSafe(t, samples)
	expectStatuses(t, "whole run", samples, normal, 50)
	t.Logf("IdP down at start: login 503 while down; login worked %v after it came back; %d requests: %s",
		recovered, len(samples), tally(samples))
}

// TestIdPFaultAtCallback lets the browser reach the IdP, then breaks the IdP before the
// gateway redeems the code: the callback answers 502 within the client timeout with no
// session; a slow IdP only makes the login slower. Once the IdP is back a login works.
func TestIdPFaultAtCallback(t *testing.T) {
	op, px := fixture.StartOPBehindProxy(t)
	const idpClientTimeout = 2 * time.Second // gateway.Options.HTTPClient; the default is 10s
	rg := startRig(t, rigOptions{issuer: op.Issuer, secret: op.ClientSecret, mutate: func(o *gateway.Options) {
		o.HTTPClient = &http.Client{Timeout: idpClientTimeout}
	}})
	rg.loginUser(t, "alice") // discovery done
	live := rg.mint(t, "cb", 8)
	l := startLoad(t, rg.URL, mixedShots(rg.URL, live, nil),
		loadOptions{workers: 4, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 40 * time.Second})

	tests := []struct {
		name       string
		fault      func()
		wantStatus int
		maxTime    time.Duration
	}{
		{name: "IdP gone (connection reset)", fault: px.Cut, wantStatus: http.StatusBadGateway, maxTime: time.Second},
		{name: "IdP hangs", fault: px.Blackhole, wantStatus: http.StatusBadGateway, maxTime: idpClientTimeout + time.Second},
		{name: "IdP slow (200ms per packet)", fault: func() { px.SetDelay(200 * time.Millisecond) }, wantStatus: http.StatusFound, maxTime: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rg.Client()
			cb := callbackURL(t, rg, c, "bob")
			before := sessionCount(t, rg)
			tt.fault()
			st, body, took := getPage(t, c, cb)
			px.SetDelay(0)
			px.Restore()
			if st != tt.wantStatus || took > tt.maxTime {
				t.Errorf("callback: %d in %v, want %d within %v (%q)", st, took, tt.wantStatus, tt.maxTime, body)
			}
			if got := sessionCount(t, rg) - before; tt.wantStatus != http.StatusFound && got != 0 {
				t.Errorf("a failed callback made %d sessions", got)
			}
			rg.loginUser(t, "bob")
			t.Logf("%s: callback %d in %v", tt.name, st, took)
		})
	}
	samples := l.stop()
	expectSafe(t, samples)
	expectStatuses(t, "whole run", samples, normal, 50)
}

// getPage GETs u as a browser navigation and returns status, body and duration.
func getPage(t *testing.T, c *http.Client, u string) (int, string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v (a panic in the gateway drops the connection)", u, err)
		return 0, "", time.Since(start)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), time.Since(start)
}

var authRequestID = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// callbackURL drives a login as user through the gateway and the devidp login form up to the
// IdP's redirect back to the gateway, and returns that callback URL without requesting it.
func callbackURL(t *testing.T, rg *rig, c *http.Client, user string) string {
	t.Helper()
	resp, err := c.Get(rg.URL + "/.auth/login?return_to=%2F")
	for i := 0; i < 10 && err == nil; i++ {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			m := authRequestID.FindSubmatch(body)
			if m == nil {
				t.Fatalf("no login form at %s", resp.Request.URL)
			}
			resp, err = c.PostForm(resp.Request.URL.String(), map[string][]string{
				"authRequestID": {string(m[1])}, "username": {user}, "password": {user}})
			continue
		}
		next, perr := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if resp.StatusCode/100 != 3 || perr != nil {
			t.Fatalf("login flow stopped at %s: %d %s", resp.Request.URL, resp.StatusCode, body)
		}
		if strings.HasPrefix(next.String(), rg.URL+"/.auth/callback") {
			return next.String()
		}
		resp, err = c.Get(next.String())
	}
	t.Fatalf("login flow did not reach the callback: %v", err)
	return ""
}
