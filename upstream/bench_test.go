package upstream

import (
	"io"
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
