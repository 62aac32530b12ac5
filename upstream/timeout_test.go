package upstream

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The tests in stream_test.go with a fake clock run Serve's own timer (a caller-supplied
// Transport); these run the built-in transports, which enforce Route.Timeout as their
// ResponseHeaderTimeout, with real (short) timeouts and generous bounds.

// serveTimerTransport is a caller-supplied transport: Serve enforces Route.Timeout itself
// with Proxy.after, which the fake-clock tests replace.
func serveTimerTransport(t *testing.T) http.RoundTripper {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestTransportTimeoutBeforeHeaders(t *testing.T) {
	block := make(chan struct{})
	slow := newHangingUpstream(t, nil, block)
	front, p := newFront(t, Options{Routes: []Route{
		{Name: "slow", PathPrefix: "/", Target: mustURL(t, slow.URL), Timeout: 100 * time.Millisecond},
	}})
	t.Cleanup(func() { close(block) }) // runs before the servers close
	if p.timed[0] {
		t.Fatal("the built-in transport's route is timed by Serve, want ResponseHeaderTimeout")
	}
	for _, tt := range []struct{ name, method, body string }{
		{name: "GET", method: http.MethodGet},
		{name: "POST with a body", method: http.MethodPost, body: strings.Repeat("x", 100<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, front.URL+"/x", strings.NewReader(tt.body))
			req.Header.Set("Accept", "text/html")
			c := front.Client()
			c.Timeout = 20 * time.Second // far above the 100ms route timeout
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusGatewayTimeout || string(b) != bodyTimeoutHTML {
				t.Fatalf("got %d %q, want 504 with the HTML timeout page", res.StatusCode, b)
			}
		})
	}
}

func TestTransportTimeoutExcludesUpload(t *testing.T) {
	started := make(chan struct{}, 1)
	block := make(chan struct{})
	slow := newHangingUpstream(t, started, block)
	const timeout = 100 * time.Millisecond
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "upload", PathPrefix: "/", Target: mustURL(t, slow.URL), Timeout: timeout},
	}})
	t.Cleanup(func() { close(block) })

	pw, done := startSlowUpload(t, front.Client(), front.URL+"/up")
	<-started
	time.Sleep(10 * timeout) // the upload takes far longer than the route timeout
	select {
	case got := <-done:
		t.Fatalf("answered %d while the request body was still uploading", got)
	default:
	}
	pw.Close()
	select {
	case got := <-done:
		if got != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504 once the body is written and the timeout passes", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no answer after the body was written")
	}
}

func TestTransportTimeoutSpareStreams(t *testing.T) {
	next := make(chan struct{})
	sse := newSSE(t, next)
	const timeout = 100 * time.Millisecond
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "events", PathPrefix: "/", Target: mustURL(t, sse.URL), Timeout: timeout},
	}})
	res, err := front.Client().Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
		t.Fatalf("first event = %q, %v", line, err)
	}
	time.Sleep(5 * timeout) // headers arrived: the timeout no longer applies
	close(next)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest of stream = %q, %v; want the second event", rest, err)
	}
}

// TestTransportsPerTimeout: routes share the built-in transports per distinct timeout.
func TestTransportsPerTimeout(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:1")
	p, err := New(Options{Routes: []Route{
		{Name: "a", PathPrefix: "/a/", Target: u},
		{Name: "b", PathPrefix: "/b/", Target: u, Timeout: time.Second},
		{Name: "c", PathPrefix: "/c/", Target: u, Timeout: time.Second},
		{Name: "d", PathPrefix: "/d/", Target: u, Timeout: 2 * time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	want := []time.Duration{0, time.Second, time.Second, 2 * time.Second}
	for i, rp := range p.proxies {
		tr, ok := rp.Transport.(*http.Transport)
		if !ok {
			t.Fatalf("route %d: transport %T, want the built-in *http.Transport", i, rp.Transport)
		}
		if tr.ResponseHeaderTimeout != want[i] || p.timed[i] {
			t.Errorf("route %d: transport %T with ResponseHeaderTimeout %v (timed by Serve %v), want %v",
				i, rp.Transport, tr.ResponseHeaderTimeout, p.timed[i], want[i])
		}
	}
	// The built-in one; per timeout a direct one (direct.go), and one with ResponseHeaderTimeout
	// unless the timeout is 0 (the built-in one has none).
	if p.proxies[1].Transport != p.proxies[2].Transport || p.direct[1].Transport != p.direct[2].Transport ||
		p.direct[0].Transport == p.direct[1].Transport || len(p.transports) != 6 {
		t.Errorf("%d transports, want 6 (routes with one timeout share them)", len(p.transports))
	}
}

// newHangingUpstream never answers: it signals started (when not nil) as a request arrives,
// reads the request body, and waits until block is closed or the request ends. Close block before the test's
// servers close (register its t.Cleanup after this call).
func newHangingUpstream(t *testing.T, started chan<- struct{}, block <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if started != nil {
			started <- struct{}{}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startSlowUpload POSTs to url a body of which it writes only a first part; the caller closes
// pw to finish it. done receives the response status (0 when the request failed).
func startSlowUpload(t *testing.T, c *http.Client, url string) (pw *io.PipeWriter, done <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	status := make(chan int, 1)
	go func() {
		res, err := c.Post(url, "application/octet-stream", pr)
		if err != nil {
			t.Error(err)
			status <- 0
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	if _, err := io.WriteString(pw, "first part of a slow upload"); err != nil {
		t.Fatal(err)
	}
	return pw, status
}
