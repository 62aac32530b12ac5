package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a raw upstream: respond answers the n-th request (from 0) of a connection, its
// body already read, by writing to it whatever it likes, and returns false to close the
// connection. It counts
// connections and requests and signals each connection it sees closed by the transport.
type scripted struct {
	url      string
	conns    atomic.Int32
	requests atomic.Int32
	gone     chan struct{} // one value per connection the transport closed (read EOF)
}

func newScripted(t *testing.T, respond func(c net.Conn, r *http.Request, n int) bool) *scripted {
	t.Helper()
	s := &scripted{gone: make(chan struct{}, 64)}
	s.url = "http://" + serveTCP(t, func(c net.Conn) {
		s.conns.Add(1)
		s.serve(c, respond)
	})
	return s
}

// serveTCP accepts connections on a new loopback listener until the test ends, running
// handle on each in its own goroutine, and returns the listener's address.
func serveTCP(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

func (s *scripted) serve(c net.Conn, respond func(net.Conn, *http.Request, int) bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.gone <- struct{}{}
			}
			return
		}
		s.requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if !respond(c, r, n) {
			return
		}
	}
}

// waitGone waits for the transport to close n of the upstream's connections.
func (s *scripted) waitGone(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.gone:
		case <-time.After(5 * time.Second):
			t.Fatal("the transport did not close the upstream connection")
		}
	}
}

// okPath answers with the request's path as the body.
func okPath(c net.Conn, r *http.Request) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
}

func testDirect(t *testing.T) *directTransport {
	t.Helper()
	dt := newDirectTransport((&net.Dialer{Timeout: 5 * time.Second}).DialContext, 5*time.Second, 8)
	t.Cleanup(dt.CloseIdleConnections)
	return dt
}

// roundTrip sends a GET (or method) for url over rt and reads the whole body.
func roundTrip(ctx context.Context, rt http.RoundTripper, method, url string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, "", err
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func mustGet(t *testing.T, rt http.RoundTripper, url string) string {
	t.Helper()
	_, body, err := roundTrip(context.Background(), rt, http.MethodGet, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return body
}

// TestDirectKeepAliveAndDeadConnections: connections are reused; one the upstream closed
// while idle is noticed before use; one that dies under a request before any byte of the
// response is retried on a fresh connection, once, and a fresh one that dies is an error.
func TestDirectKeepAliveAndDeadConnections(t *testing.T) {
	up := newScripted(t, func(c net.Conn, r *http.Request, n int) bool {
		switch {
		case r.URL.Path == "/close-after":
			okPath(c, r)
			return false // no Connection: close: the transport must notice by itself
		case r.URL.Path == "/die-when-reused" && n > 0, r.URL.Path == "/die-always":
			return false // read the request, close without answering
		}
		okPath(c, r)
		return true
	})
	dt := testDirect(t)
	for range 3 {
		if got := mustGet(t, dt, up.url+"/a"); got != "/a" {
			t.Fatalf("body %q", got)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("%d connections for 3 GETs, want 1 kept alive", n)
	}

	mustGet(t, dt, up.url+"/close-after")
	if got := mustGet(t, dt, up.url+"/a"); got != "/a" {
		t.Fatalf("after the upstream closed an idle connection: body %q", got)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the closed one replaced)", n)
	}

	req0 := up.requests.Load()
	if got := mustGet(t, dt, up.url+"/die-when-reused"); got != "/die-when-reused" {
		t.Fatalf("retried GET: body %q", got)
	}
	if n := up.requests.Load() - req0; n != 2 {
		t.Errorf("upstream saw the GET %d times, want 2 (the dead reused connection, then a fresh one)", n)
	}

	mustGet(t, dt, up.url+"/a") // leaves a connection idle
	req0 = up.requests.Load()
	if _, _, err := roundTrip(context.Background(), dt, http.MethodGet, up.url+"/die-always"); err == nil {
		t.Fatal("an upstream that closes every connection unanswered: no error")
	}
	if n := up.requests.Load() - req0; n != 2 {
		t.Errorf("upstream saw the GET %d times, want 2 (reused, then fresh; a fresh one is not retried)", n)
	}
}

// TestDirectUnsolicitedResponseNotDelivered: an upstream that answers one request twice
// (response queue poisoning) must not have the extra response delivered to the next request,
// whether the extra bytes come with the first response or later, while the connection is idle.
func TestDirectUnsolicitedResponseNotDelivered(t *testing.T) {
	const poison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison"
	wrote := make(chan struct{}, 1)
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		switch r.URL.Path {
		case "/together":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok%s", poison)
		case "/head-with-body": // a HEAD answered with a body: the body is not the next response
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"+poison)
		case "/later":
			okPath(c, r)
			time.Sleep(20 * time.Millisecond) // after the transport has pooled the connection
			io.WriteString(c, poison)
			wrote <- struct{}{}
		default:
			okPath(c, r)
		}
		return true
	})
	dt := testDirect(t)
	for _, path := range []string{"/together", "/head-with-body", "/later"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			method := http.MethodGet
			if path == "/head-with-body" {
				method = http.MethodHead
			}
			if _, _, err := roundTrip(context.Background(), dt, method, up.url+path); err != nil {
				t.Fatal(err)
			}
			if path == "/later" {
				<-wrote
				time.Sleep(10 * time.Millisecond) // loopback delivers at once; a margin for a busy host
			}
			conns := up.conns.Load()
			if got := mustGet(t, dt, up.url+"/next"); got != "/next" {
				t.Fatalf("the next request got %q, want its own response", got)
			}
			if up.conns.Load() != conns+1 {
				t.Errorf("the poisoned connection was reused")
			}
		})
	}
}

// TestDirectHeaderLimit: header blocks, 1xx ones included, are bounded in total.
func TestDirectHeaderLimit(t *testing.T) {
	big := strings.Repeat("a", 600)
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		switch r.URL.Path {
		case "/big":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s%s\r\nContent-Length: 0\r\n\r\n", big, big)
		case "/hints":
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: %s\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: %s\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", big, big)
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", big)
		}
		return true
	})
	dt := testDirect(t)
	dt.maxHeader = 1024
	for _, tt := range []struct {
		path    string
		wantErr bool
	}{
		{path: "/small"},
		{path: "/big", wantErr: true},
		{path: "/hints", wantErr: true},
	} {
		_, _, err := roundTrip(context.Background(), dt, http.MethodGet, up.url+tt.path)
		if (err != nil) != tt.wantErr || (err != nil && !strings.Contains(err.Error(), "exceed 1024 bytes")) {
			t.Errorf("%s: err %v, want error %v", tt.path, err, tt.wantErr)
		}
	}
}

// TestDirectInformational: 1xx responses reach the request's trace (ReverseProxy forwards
// them to the client) before the final one; too many of them, a 101 to a request that asked
// for no upgrade, or a status code below 100, is a 502.
func TestDirectInformational(t *testing.T) {
	const hint = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		switch r.URL.Path {
		case "/hint":
			io.WriteString(c, hint+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/many":
			io.WriteString(c, strings.Repeat(hint, max1xx+1)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/switch":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		case "/status-099": // net/http parses it; writing it to the client would panic
			io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
		}
		return true
	})
	front, _ := newFront(t, Options{Routes: []Route{{Name: "raw", PathPrefix: "/", Target: mustURL(t, up.url), Timeout: 5 * time.Second}}})
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	res, body, err := roundTrip(ctx, front.Client().Transport, http.MethodGet, front.URL+"/hint")
	if err != nil || res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("/hint: %v %v %q", err, res, body)
	}
	if want := []string{"103 </a.css>; rel=preload"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the client saw 1xx %q, want %q", got, want)
	}
	for _, tt := range []struct{ method, path string }{
		{method: http.MethodGet, path: "/many"},
		{method: http.MethodGet, path: "/switch"},
		{method: http.MethodGet, path: "/status-099"},
		{method: http.MethodDelete, path: "/status-099"}, // over http.Transport
	} {
		res, _, err := roundTrip(context.Background(), front.Client().Transport, tt.method, front.URL+tt.path)
		if err != nil || res.StatusCode != http.StatusBadGateway {
			t.Errorf("%s %s: %v %v, want 502", tt.method, tt.path, err, res)
		}
	}
}

// TestDirectBodyFraming: every way a response ends its body is read exactly, and the
// connection is kept only where the response allows it.
func TestDirectBodyFraming(t *testing.T) {
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		switch r.URL.Path {
		case "/head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
				"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n")
		case "/until-close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
			return false
		case "/http10":
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold")
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")
		default:
			okPath(c, r)
		}
		return true
	})
	dt := testDirect(t)
	for _, tt := range []struct {
		method, path string
		wantBody     string
		wantTrailer  string
		wantReuse    bool
	}{
		{method: http.MethodHead, path: "/head", wantReuse: true},
		{method: http.MethodGet, path: "/204", wantReuse: true},
		{method: http.MethodGet, path: "/304", wantReuse: true},
		{method: http.MethodGet, path: "/chunked", wantBody: "abcde", wantTrailer: "5", wantReuse: true},
		{method: http.MethodGet, path: "/until-close", wantBody: "all of it"},
		{method: http.MethodGet, path: "/http10", wantBody: "old"},
		{method: http.MethodGet, path: "/close", wantBody: "bye"},
	} {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			dt.CloseIdleConnections()
			conns := up.conns.Load()
			res, body, err := roundTrip(context.Background(), dt, tt.method, up.url+tt.path)
			if err != nil || body != tt.wantBody || res.Trailer.Get("X-Sum") != tt.wantTrailer {
				t.Fatalf("err %v, body %q, trailer %q; want %q, %q", err, body, res.Trailer.Get("X-Sum"), tt.wantBody, tt.wantTrailer)
			}
			if got := mustGet(t, dt, up.url+"/next"); got != "/next" {
				t.Fatalf("next request: body %q", got)
			}
			if reused := up.conns.Load() == conns+1; reused != tt.wantReuse {
				t.Errorf("connection reused %v, want %v", reused, tt.wantReuse)
			}
		})
	}
}

// TestDirectContextEndsRoundTrip: the request's context ending (the client went away)
// closes the upstream connection at once, while waiting for headers (with no timeout) and
// while the body stalls.
func TestDirectContextEndsRoundTrip(t *testing.T) {
	arrived, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		if r.URL.Path == "/stall-body" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
		}
		arrived <- struct{}{}
		_, _ = io.Copy(io.Discard, c) // stalls until the transport closes the connection
		closed <- struct{}{}
		return false
	})
	waitClosed := func(t *testing.T) {
		t.Helper()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the transport did not close the upstream connection")
		}
	}
	dt := newDirectTransport((&net.Dialer{}).DialContext, 0, 8)
	t.Cleanup(dt.CloseIdleConnections)

	t.Run("headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		done := make(chan error, 1)
		go func() {
			_, _, err := roundTrip(ctx, dt, http.MethodGet, up.url+"/stall-headers")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the round trip still waits for headers after the context ended")
		}
		waitClosed(t)
	})
	t.Run("body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.url+"/stall-body", nil)
		res, err := dt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		<-arrived
		buf := make([]byte, 2)
		if _, err := io.ReadFull(res.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		done := make(chan error, 1)
		go func() {
			_, err := res.Body.Read(buf)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("read after the context ended: no error")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the body read still blocks after the context ended")
		}
		res.Body.Close()
		waitClosed(t)
	})
}

// TestDirectIdlePool: at most maxIdle connections per host stay idle, and the sweep closes
// those idle for idleTimeout.
func TestDirectIdlePool(t *testing.T) {
	var both sync.WaitGroup
	both.Add(2)
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
		if r.URL.Path == "/pair" {
			both.Done()
			both.Wait() // both requests in flight at once: two connections
		}
		okPath(c, r)
		return true
	})
	now := time.Unix(1000, 0)
	dt := testDirect(t)
	dt.maxIdle, dt.now = 1, func() time.Time { return now }
	idle := func() (conns int, sweep bool) {
		dt.mu.Lock()
		defer dt.mu.Unlock()
		for _, stack := range dt.idle {
			conns += len(stack)
		}
		return conns, dt.sweep != nil
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, body, err := roundTrip(context.Background(), dt, http.MethodGet, up.url+"/pair"); err != nil || body != "/pair" {
				t.Errorf("GET /pair: %q, %v", body, err)
			}
		})
	}
	wg.Wait()
	up.waitGone(t, 1) // the second one back found the pool full
	if n, sweep := idle(); n != 1 || !sweep {
		t.Fatalf("%d idle connections, sweep scheduled %v; want 1, true", n, sweep)
	}

	now = now.Add(dt.idleTimeout - time.Second)
	dt.sweepIdle()
	if n, sweep := idle(); n != 1 || !sweep {
		t.Fatalf("before idleTimeout: %d idle connections, sweep scheduled %v; want 1, true", n, sweep)
	}
	now = now.Add(time.Second)
	dt.sweepIdle()
	up.waitGone(t, 1)
	if n, sweep := idle(); n != 0 || sweep {
		t.Errorf("after idleTimeout: %d idle connections, sweep scheduled %v; want none", n, sweep)
	}
}

// TestDirectRefuses: anything but a body-less, non-upgrade GET, HEAD, OPTIONS or TRACE to
// http://, and headers net/http would not send, are refused before connecting.
func TestDirectRefuses(t *testing.T) {
	up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool { okPath(c, r); return true })
	dt := testDirect(t)
	for _, tt := range []struct {
		name   string
		method string
		url    string
		body   io.Reader
		header http.Header
	}{
		{name: "POST", method: http.MethodPost, url: up.url},
		{name: "body", method: http.MethodGet, url: up.url, body: strings.NewReader("x")},
		{name: "https", method: http.MethodGet, url: strings.Replace(up.url, "http:", "https:", 1)},
		{name: "upgrade", method: http.MethodGet, url: up.url, header: http.Header{"Upgrade": {"websocket"}}},
		{name: "newline in a value", method: http.MethodGet, url: up.url, header: http.Header{"X-A": {"a\r\nX-Injected: 1"}}},
		{name: "space in a name", method: http.MethodGet, url: up.url, header: http.Header{"X A": {"1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url+"/x", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != nil {
				req.Header = tt.header
			}
			if _, err := dt.RoundTrip(req); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if n := up.conns.Load(); n != 0 {
		t.Errorf("%d connections made, want 0", n)
	}
}

// TestDirectUpstreamRestart: when the upstream drops every connection (a restart), the pooled
// ones are found dead and the next requests, all at once, still succeed on new connections.
func TestDirectUpstreamRestart(t *testing.T) {
	const n = 8
	var gate sync.WaitGroup
	gate.Add(n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fill" {
			gate.Done()
			gate.Wait() // n requests in flight at once: n pooled connections afterwards
		}
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	dt := testDirect(t)
	getAll := func(path string) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, body, err := roundTrip(context.Background(), dt, http.MethodGet, srv.URL+path); err != nil || body != path {
					t.Errorf("GET %s: %q, %v", path, body, err)
				}
			})
		}
		wg.Wait()
	}
	getAll("/fill")
	srv.CloseClientConnections() // the upstream goes away and comes back
	getAll("/after")
}
