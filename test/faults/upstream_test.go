package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/upstream"
)

// faulty is an upstream that misbehaves on purpose, behind the guard's identity check:
// /early/ resets the connection before any header, /reset/ resets it in the middle of a body
// announced with a Content-Length, /hang/ never answers, /stream/?n=BYTES streams n bytes (0:
// without end) until the client goes away.
type faulty struct {
	active  atomic.Int64 // /hang/ and /stream/ handlers still running
	release chan struct{}
}

var chunk = []byte(strings.Repeat("0123456789abcdef", 2048)) // 32 KiB

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/early/"):
		resetConn(w)
	case strings.HasPrefix(r.URL.Path, "/reset/"):
		w.Header().Set("Content-Length", strconv.Itoa(mib))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(chunk)
		_, _ = w.Write(chunk)
		resetConn(w)
	case strings.HasPrefix(r.URL.Path, "/hang/"):
		f.active.Add(1)
		defer f.active.Add(-1)
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
	case strings.HasPrefix(r.URL.Path, "/stream/"):
		f.active.Add(1)
		defer f.active.Add(-1)
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Type", "application/octet-stream")
		rc := http.NewResponseController(w)
		for sent, i := int64(0), 0; n == 0 || sent < n; i++ {
			b := chunk
			if n > 0 && n-sent < int64(len(b)) {
				b = b[:n-sent]
			}
			if _, err := w.Write(b); err != nil {
				return // the client went away
			}
			sent += int64(len(b))
			if i%32 == 0 {
				_ = rc.Flush()
			}
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"ok":true}`)
	}
}

// resetConn takes the connection over (flushing what was written) and resets it.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	reset(conn)
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// upstreamRig is a gateway whose routes lead to the faulty upstream (through the guard), plus
// /refused/ to a port where nothing listens. Route timeouts: /hang/ 500ms, the others 2s.
type upstreamRig struct {
	*rig
	up     *faulty
	user   testSession
	client *http.Client // for single requests: no test waits for an answer forever
}

const hangTimeout = 500 * time.Millisecond

func startUpstreamRig(t *testing.T) *upstreamRig {
	t.Helper()
	up := &faulty{release: make(chan struct{})}
	t.Cleanup(func() { close(up.release) })
	gd := startGuard(t)
	srv := httptest.NewServer(guarded(gd, up))
	t.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close()
	route := func(name string, d time.Duration, to *url.URL) gateway.Route {
		return gateway.Route{Route: upstream.Route{Name: name, PathPrefix: "/" + name + "/", Target: to, Timeout: d}}
	}
	routes := []gateway.Route{
		route("refused", 2*time.Second, refused), route("early", 2*time.Second, target),
		route("reset", 2*time.Second, target), route("hang", hangTimeout, target),
		route("stream", 2*time.Second, target),
		{Route: upstream.Route{Name: "app", PathPrefix: "/", Target: target, Timeout: 2 * time.Second}},
	}
	rg := startRig(t, rigOptions{routes: routes})
	rg.guard = gd
	ur := &upstreamRig{rig: rg, up: up, client: &http.Client{Timeout: 10 * time.Second}}
	ur.user = rg.mint(t, "up", 1)[0]
	return ur
}

// guarded runs the guard's identity check before next.
func guarded(g *guard, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if problem := g.check(r); problem != "" {
			g.ServeHTTP(w, r) // records the violation
			return
		}
		next.ServeHTTP(w, r)
	})
}

// request builds an API request of the rig's live session.
func (ur *upstreamRig) request(ctx context.Context, path string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ur.URL+path, nil)
	req.AddCookie(ur.user.cookie)
	req.Header.Set(hdrKind, "live")
	req.Header.Set(hdrUser, ur.user.user)
	return req
}

// TestUpstreamFaults: an upstream that refuses, resets or hangs gets 502/504 quickly for its
// own route, with the fixed error body, while another route keeps serving at full speed.
func TestUpstreamFaults(t *testing.T) {
	ur := startUpstreamRig(t)
	l := startLoad(t, ur.URL, []shot{{kind: "live", user: ur.user.user, method: http.MethodGet, path: "/app/x", cookie: ur.user.cookie}},
		loadOptions{workers: 4, pause: 5 * time.Millisecond, maxRequests: 40000, maxTime: 30 * time.Second})
	tests := []struct {
		name       string
		path       string
		parallel   int
		wantStatus int
		wantBody   string
		minTime    time.Duration
		maxTime    time.Duration
	}{
		{name: "connection refused", path: "/refused/x", parallel: 8, wantStatus: http.StatusBadGateway, wantBody: "upstream_unavailable", maxTime: time.Second},
		{name: "reset before the headers", path: "/early/x", parallel: 8, wantStatus: http.StatusBadGateway, wantBody: "upstream_unavailable", maxTime: time.Second},
		{name: "no headers within the route timeout", path: "/hang/x", parallel: 16, wantStatus: http.StatusGatewayTimeout,
			wantBody: "upstream_timeout", minTime: hangTimeout, maxTime: hangTimeout + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, start := l.now(), time.Now()
			var wg sync.WaitGroup
			for i := 0; i < tt.parallel; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					resp, err := ur.client.Do(ur.request(context.Background(), tt.path))
					if err != nil {
						t.Errorf("%s: %v", tt.path, err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					took := time.Since(start)
					if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
						t.Errorf("%s: %d %q, want %d %s", tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
					}
					if took < tt.minTime || took > tt.maxTime {
						t.Errorf("%s answered in %v, want within [%v, %v]", tt.path, took, tt.minTime, tt.maxTime)
					}
				}()
			}
			wg.Wait()
			time.Sleep(time.Until(start.Add(400 * time.Millisecond))) // a window with enough healthy requests
			others := within(l.snapshot(), from, l.now())
			expectStatuses(t, "the healthy route meanwhile", others, normal, 5)
			if p := percentile(others, .99); p > time.Second {
				t.Errorf("the healthy route slowed down to p99 %v", p)
			}
		})
	}
	samples := l.stop()
	expectSafe(t, samples)
	if _, ok := waitFor(2*time.Second, func() bool { return ur.up.active.Load() == 0 }); !ok {
		t.Errorf("%d upstream requests still running 2s after their 504", ur.up.active.Load())
	}
	t.Logf("healthy route during the faults: %d requests, p50 %v p99 %v", len(samples), percentile(samples, .5), percentile(samples, .99))
}

// TestUpstreamResetMidBody: when the upstream dies in the middle of a body, the client's body
// ends in an error (never a short body that looks complete), and the gateway goes on.
func TestUpstreamResetMidBody(t *testing.T) {
	ur := startUpstreamRig(t)
	for i := 0; i < 5; i++ {
		resp, err := ur.client.Do(ur.request(context.Background(), "/reset/x"))
		if err != nil {
			continue // also fine: the gateway may reset the client connection
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil || n >= mib {
			t.Errorf("reset mid-body: read %d bytes, err %v; want an error before 1 MiB", n, err)
		}
	}
	resp, err := ur.client.Do(ur.request(context.Background(), "/app/after"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the resets: %v %v", resp, err)
	}
	resp.Body.Close()
}

// streamSize is how much TestUpstreamHugeBody streams: AUTHGATE_STREAM_MIB, default 500 MiB.
func streamSize(t *testing.T) int64 {
	if v := os.Getenv("AUTHGATE_STREAM_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("AUTHGATE_STREAM_MIB=%q", v)
		}
		return int64(n) * mib
	}
	return 500 * mib
}

// TestUpstreamHugeBody streams a huge body through the gateway: it arrives whole, the first
// bytes arrive at once, the route timeout does not cut it, and the gateway does not buffer it
// (heap growth stays far below the body size).
func TestUpstreamHugeBody(t *testing.T) {
	ur := startUpstreamRig(t)
	size := streamSize(t)
	base := heapInuse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := http.DefaultClient.Do(ur.request(ctx, fmt.Sprintf("/stream/x?n=%d", size)))
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if resp.StatusCode != http.StatusOK || err != nil || n != size {
		t.Fatalf("stream: %d, %d of %d bytes, err %v", resp.StatusCode, n, size, err)
	}
	if first > time.Second {
		t.Errorf("first byte after %v", first)
	}
	growth := int64(peak.Load()) - int64(base)
	if growth > 50*mib {
		t.Errorf("heap grew by %d MiB while streaming %d MiB: the body is buffered", growth/mib, size/mib)
	}
	t.Logf("streamed %d MiB in %v (%.0f MiB/s), headers after %v, heap in use %d MiB before, peak growth %d MiB",
		size/mib, took, float64(size)/mib/took.Seconds(), first, base/mib, growth/mib)
}

// TestClientDropsMidResponse: clients that go away in the middle of an endless stream end the
// upstream request too, and leave no goroutine behind.
func TestClientDropsMidResponse(t *testing.T) {
	ur := startUpstreamRig(t)
	idle := idleGoroutines(t, ur.URL, []shot{{kind: "live", user: ur.user.user, method: http.MethodGet, path: "/app/x", cookie: ur.user.cookie}})
	const clients = 16
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(ur.request(ctx, "/stream/x?n=0"))
			if err != nil {
				t.Error(err)
				return
			}
			n, err := io.CopyN(io.Discard, resp.Body, 4*mib)
			if n != 4*mib || err != nil {
				t.Errorf("endless stream: %d bytes, %v", n, err)
			}
			cancel() // the client goes away mid-response
			resp.Body.Close()
		}()
	}
	wg.Wait()
	took, ok := waitFor(5*time.Second, func() bool { return ur.up.active.Load() == 0 })
	if !ok {
		t.Errorf("%d upstream streams still running 5s after their clients left", ur.up.active.Load())
	}
	end, settled := settleGoroutines(idle, 8, 5*time.Second)
	if !settled {
		t.Errorf("goroutines: %d before, %d after %d clients dropped mid-response", idle, end, clients)
	}
	t.Logf("%d clients dropped mid-stream: upstream requests ended %v later; goroutines %d before, %d after", clients, took, idle, end)
}
