package faults

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// readHeaderTimeout is cmd/authgate's http.Server.ReadHeaderTimeout.
const readHeaderTimeout = 10 * time.Second

// TestClientAbuse runs abusive clients against the real `authgate serve` binary: slowloris
// connections are closed by the header timeout while others are served, oversized headers and
// cookies get 431, and a thousand garbage cookies never cause a 5xx or let anyone in.
func TestClientAbuse(t *testing.T) {
	t.Parallel() // mostly waiting (the slowloris timeout): overlap it with the other parallel tests
	b := startBinary(t)
	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		testSlowloris(t, b)
	})
	t.Run("oversized headers", func(t *testing.T) {
		t.Parallel()
		testOversized(t, b)
	})
	t.Run("garbage cookies", func(t *testing.T) {
		t.Parallel()
		testGarbageCookies(t, b)
	})
	t.Run("slow body without a session", func(t *testing.T) {
		t.Parallel()
		testSlowBody(t, b)
	})
}

// testSlowloris opens connections that send their headers one byte per second: each is closed
// by the server around ReadHeaderTimeout after it opened, and meanwhile normal requests are
// served at once.
func testSlowloris(t *testing.T, b *binary) {
	const conns = 32
	closedAfter := make([]time.Duration, conns)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			closedAfter[i] = slowloris(t, b.Addr, 2*readHeaderTimeout)
		}()
	}
	time.Sleep(2 * time.Second)
	for i := 0; i < 5; i++ {
		start := time.Now()
		resp, err := http.Get(b.URL + "/public/while-slowloris")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("normal request during slowloris: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("normal request during slowloris took %v", d)
		}
	}
	wg.Wait()
	lo, hi := closedAfter[0], closedAfter[0]
	for _, d := range closedAfter {
		lo, hi = min(lo, d), max(hi, d)
		if d < readHeaderTimeout-time.Second || d > readHeaderTimeout+3*time.Second {
			t.Errorf("slowloris connection closed after %v, want about %v", d, readHeaderTimeout)
		}
	}
	t.Logf("%d slowloris connections closed after %v to %v", conns, lo, hi)
}

// slowloris sends a request line and then one header byte per second until the server closes
// the connection (or limit passes), and returns how long the connection lived.
func slowloris(t *testing.T, addr string, limit time.Duration) time.Duration {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_ = conn.SetReadDeadline(start.Add(limit))
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes (or the limit passes)
		closed <- time.Since(start)
	}()
	_, _ = conn.Write([]byte("GET /public/slow HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: "))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			return d
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				return <-closed
			}
		}
	}
}

// testOversized sends headers beyond MaxHeaderBytes (64 KiB): 431, whatever carries the bulk;
// just below the limit the request is handled normally.
func testOversized(t *testing.T, b *binary) {
	tests := []struct {
		name    string
		headers string
		want    int
	}{
		{name: "one 100 KiB header", headers: "X-Big: " + strings.Repeat("a", 100<<10) + "\r\n", want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "one 100 KiB cookie", headers: "Cookie: " + fixture.CookieName + "=" + strings.Repeat("b", 100<<10) + "\r\n", want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "4000 small headers", headers: strings.Repeat("X-Many: 0123456789\r\n", 4000), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB of cookies", headers: strings.Repeat("Cookie: c="+strings.Repeat("c", 1000)+"\r\n", 1024), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "48 KiB header, under the limit", headers: "X-Big: " + strings.Repeat("a", 48<<10) + "\r\n", want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		raw := "GET /app/oversized HTTP/1.1\r\nHost: " + b.Addr + "\r\nAccept: application/json\r\n" + tt.headers + "\r\n"
		if got := rawRequest(t, b.Addr, []byte(raw)); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	for _, r := range b.Echo.All() {
		if r.Path == "/app/oversized" {
			t.Error("an oversized request reached the upstream")
		}
	}
}

// testGarbageCookies sends a thousand garbage cookies with and without a live session: never
// a 5xx; a session among garbage still works; a thousand session cookies (cookie tossing) let
// nobody in.
func testGarbageCookies(t *testing.T, b *binary) {
	alice := b.login(t, "alice")
	live := b.sessionCookieOf(t, alice)
	garbage := make([]string, 1000)
	for i := range garbage {
		garbage[i] = fmt.Sprintf("g%d=%s", i, strings.Repeat("x", i%40))
	}
	tossed := make([]string, 1000)
	for i := range tossed {
		tossed[i] = fmt.Sprintf("%s=%s|%d", fixture.CookieName, strings.Repeat("A", 40), i)
	}
	join := func(parts ...[]string) string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return strings.Join(all, "; ")
	}
	liveOne := []string{live.Name + "=" + live.Value}
	tests := []struct {
		name, path, cookie string
		want               int
	}{
		{name: "garbage, no session, protected", path: "/app/x", cookie: join(garbage), want: http.StatusUnauthorized},
		{name: "garbage, no session, public", path: "/public/x", cookie: join(garbage), want: http.StatusOK},
		{name: "garbage around a live session", path: "/app/x", cookie: join(garbage[:500], liveOne, garbage[500:]), want: http.StatusOK},
		{name: "garbage, me", path: "/.auth/me", cookie: join(garbage), want: http.StatusUnauthorized},
		{name: "a thousand session cookies", path: "/app/x", cookie: join(tossed), want: http.StatusUnauthorized},
		{name: "a live session among tossed ones", path: "/app/x", cookie: join(liveOne, tossed), want: http.StatusUnauthorized},
		{name: "a thousand empty cookies", path: "/app/x", cookie: strings.Repeat("=; ", 1000), want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, b.URL+tt.path, nil)
		req.Header.Set("Cookie", tt.cookie)
		req.Header.Set("Accept", "application/json")
		before := b.Echo.Count()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		reached := b.Echo.Count() > before
		if reached != (tt.want == http.StatusOK) {
			t.Errorf("%s: reached the upstream: %v", tt.name, reached)
		}
		if !reached {
			continue
		}
		got, _ := b.Echo.Last()
		fwd := strings.Join(got.Header.Values("Cookie"), "; ")
		if strings.Contains(fwd, live.Value) || !strings.Contains(fwd, "g999=") {
			t.Errorf("%s: forwarded Cookie header has the session or lost the app's cookies", tt.name)
		}
		if tt.path == "/app/x" && got.Header.Get("X-Auth-Subject") != "user-alice" {
			t.Errorf("%s: upstream identity %q", tt.name, got.Header.Get("X-Auth-Subject"))
		}
	}
}

// testSlowBody: a request to a protected route without a session is refused as soon as its
// headers are in, without waiting for a body the client trickles.
func testSlowBody(t *testing.T, b *binary) {
	conn, err := net.DialTimeout("tcp", b.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = conn.Write([]byte("POST /app/upload HTTP/1.1\r\nHost: " + b.Addr + "\r\nContent-Type: application/json\r\n" +
		"Content-Length: 100000\r\n\r\n{\"a\":"))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 401") {
		t.Errorf("slow body without a session: %q", buf[:n])
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("slow body without a session answered after %v", d)
	}
}
