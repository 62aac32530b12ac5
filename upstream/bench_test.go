package upstream

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// stubTransport answers every request at once, so the benchmark measures the proxy alone.
type stubTransport struct{}

func (stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"theme=dark"}},
		Body:          io.NopCloser(strings.NewReader(`{"ok":true}`)),
		ContentLength: 11,
		Request:       r,
	}, nil
}

// discardWriter is a reusable ResponseWriter that keeps nothing.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func BenchmarkServe(b *testing.B) {
	p, err := New(Options{
		Routes: []Route{{Name: "api", PathPrefix: "/api/", Target: mustURL(b, "http://127.0.0.1:9001/base"),
			StripPrefix: true, Timeout: 30 * time.Second}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		GatewayCookies: gatewayCookie,
		Transport:      stubTransport{},
	})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://gw.example.com/api/items/42?x=1", nil)
	r.RemoteAddr = "203.0.113.7:4000"
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Cookie", "__Host-authgate=secret; theme=dark")
	r.Header.Set("X-Auth-User-Id", "spoof")
	set := identitySet()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		p.Serve(w, r, 0, set)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkRoundTrip compares a round trip to a loopback upstream (raw answers, 100-byte
// body) over http.Transport, tuned as the built-in one, and over the direct transport, each
// request with a cancellable context as a server's are; 16 goroutines per CPU. The upstream
// runs in this process: with -cpu 1 the figure is the CPU of both sides per round trip.
//
//	go test -run '^$' -bench RoundTrip -cpu 1 -count 6 ./upstream/
func BenchmarkRoundTrip(b *testing.B) {
	body := strings.Repeat("x", 100)
	addr := rawBenchUpstream(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+body)
	for _, bt := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{name: "http.Transport", rt: newTransport(256)},
		{name: "direct", rt: newDirectTransport(newDialer(dialTimeout).DialContext, 30*time.Second, 256)},
	} {
		b.Run(bt.name, func(b *testing.B) {
			defer bt.rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 32<<10)
				for pb.Next() {
					ctx, cancel := context.WithCancel(context.Background())
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/x", nil)
					res, err := bt.rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						cancel()
						return
					}
					n, _ := io.CopyBuffer(io.Discard, res.Body, buf)
					res.Body.Close()
					cancel()
					if n != 100 {
						b.Errorf("body of %d bytes", n)
						return
					}
				}
			})
		})
	}
}

// rawBenchUpstream answers every request on every connection with resp, reading no more of
// a request than its header block (the benchmark's requests have no body).
func rawBenchUpstream(tb testing.TB, resp string) string {
	tb.Helper()
	return serveTCP(tb, func(c net.Conn) {
		defer c.Close()
		buf, n := make([]byte, 16<<10), 0
		for n < len(buf) {
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			for {
				i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				if _, err := io.WriteString(c, resp); err != nil {
					return
				}
				n = copy(buf, buf[i+4:n])
			}
		}
	})
}

// TestDirectAllocBudget fails when a round trip over the direct transport (GET, 100-byte body
// read to EOF, a kept-alive loopback connection) allocates more than its budget, so that a
// regression on the per-request path fails CI. Budget: measured + 3 (31 without the race
// detector, 34 with it); raise it only with a reason in the commit message. Measure with:
//
//	go test -run '^$' -bench 'RoundTrip/direct' -benchmem ./upstream/
func TestDirectAllocBudget(t *testing.T) {
	budget := 31.0 + 3
	if raceEnabled {
		budget = 34 + 3
	}
	addr := rawBenchUpstream(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100))
	dt := newDirectTransport(newDialer(dialTimeout).DialContext, 30*time.Second, 4)
	t.Cleanup(dt.CloseIdleConnections)
	buf := make([]byte, 32<<10)
	var failed error
	allocs := testing.AllocsPerRun(300, func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/x", nil)
		res, err := dt.RoundTrip(req)
		if err != nil {
			failed = err
			return
		}
		_, _ = io.CopyBuffer(io.Discard, res.Body, buf)
		res.Body.Close()
	})
	if failed != nil {
		t.Fatal(failed)
	}
	t.Logf("%v allocs per round trip (race detector: %v)", allocs, raceEnabled)
	if allocs > budget {
		t.Errorf("%v allocs per round trip, budget %v", allocs, budget)
	}
}
