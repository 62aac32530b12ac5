package upstream

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDirectTransportTimeout: a body-less GET to a plain-HTTP upstream goes over the direct
// transport, which times out the response's header block (not its body) on the connection.
func TestDirectTransportTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	up := newScripted(t, func(w net.Conn, r *http.Request, _ int) bool {
		write := func(s string) { _, _ = io.WriteString(w, s) }
		switch r.URL.Path {
		case "/ok":
			write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/stall-in-headers":
			write("HTTP/1.1 200 OK\r\n")
			<-stall
		case "/early-hints-then-stall":
			write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			<-stall
		case "/headers-trickle": // every piece within the timeout, the whole block beyond it
			for _, p := range []string{"HTTP/1.1 200 OK\r\n", "A: 1\r\n", "B: 2\r\n", "C: 3\r\n", "Content-Length: 2\r\n"} {
				write(p)
				time.Sleep(timeout / 2)
			}
			write("\r\nok")
		case "/slow-body": // bare LF line ends; the body takes longer than the timeout
			write("HTTP/1.1 200 OK\nContent-Length: 4\n\nab")
			time.Sleep(3 * timeout)
			write("cd")
		}
		return true
	})
	front, p := newFront(t, Options{Routes: []Route{
		{Name: "raw", PathPrefix: "/", Target: mustURL(t, up.url), Timeout: timeout},
	}})
	if p.direct[0] == nil {
		t.Fatal("a plain-HTTP route has no direct transport")
	}
	get := func(t *testing.T, path string) (int, string, time.Duration) {
		t.Helper()
		start := time.Now()
		c := front.Client()
		c.Timeout = 5 * time.Second // a timeout that does not fire fails here, not by hanging
		res, err := c.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s: reading the body: %v", path, err)
		}
		return res.StatusCode, string(b), time.Since(start)
	}
	for _, tt := range []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{path: "/ok", wantStatus: http.StatusOK, wantBody: "ok"},
		{path: "/stall-in-headers", wantStatus: http.StatusGatewayTimeout, wantBody: bodyTimeoutJSON},
		{path: "/early-hints-then-stall", wantStatus: http.StatusGatewayTimeout, wantBody: bodyTimeoutJSON},
		{path: "/headers-trickle", wantStatus: http.StatusGatewayTimeout, wantBody: bodyTimeoutJSON},
		{path: "/slow-body", wantStatus: http.StatusOK, wantBody: "abcd"},
	} {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			status, body, took := get(t, tt.path)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
			if status == http.StatusGatewayTimeout && (took < timeout || took > 20*timeout) {
				t.Errorf("answered 504 after %v, want about %v", took, timeout)
			}
		})
	}

	t.Run("idle keep-alive outlives the timeout", func(t *testing.T) {
		front.Client().CloseIdleConnections()
		p.CloseIdleConnections()
		before := up.conns.Load()
		for range 3 {
			if status, body, _ := get(t, "/ok"); status != http.StatusOK || body != "ok" {
				t.Fatalf("got %d %q", status, body)
			}
			time.Sleep(3 * timeout) // idle far longer than the timeout: the deadline is cleared
		}
		if n := up.conns.Load() - before; n != 1 {
			t.Errorf("%d upstream connections for 3 requests, want 1 kept alive", n)
		}
	})
}

// TestDirectTransportChoice: plain-HTTP routes have a direct transport, one per timeout
// (TLS ones do not), and only body-less, non-upgrade GET, HEAD, OPTIONS and TRACE requests
// take it; the rest keep http.Transport with ResponseHeaderTimeout (the upload and WebSocket
// tests check the behaviour; this checks the choice).
func TestDirectTransportChoice(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:1")
	p, err := New(Options{Routes: []Route{
		{Name: "plain", PathPrefix: "/a/", Target: u, Timeout: time.Second},
		{Name: "tls", PathPrefix: "/b/", Target: mustURL(t, "https://127.0.0.1:1"), Timeout: time.Second},
		{Name: "plain-too", PathPrefix: "/c/", Target: u, Timeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	if p.direct[0] == nil || p.direct[1] != nil || p.direct[2] == nil || p.direct[0].Transport != p.direct[2].Transport {
		t.Fatalf("direct proxies %v, want plain routes only, sharing one transport", p.direct)
	}
	if dt := p.direct[0].Transport.(*directTransport); dt.timeout != time.Second {
		t.Errorf("direct transport timeout %v, want the route's 1s", dt.timeout)
	}
	upgrade := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
	for _, tt := range []struct {
		name   string
		method string
		header http.Header
		body   io.Reader
		want   bool
	}{
		{name: "GET", method: http.MethodGet, want: true},
		{name: "HEAD", method: http.MethodHead, want: true},
		{name: "OPTIONS", method: http.MethodOptions, want: true},
		{name: "TRACE", method: http.MethodTrace, want: true},
		{name: "GET with a body", method: http.MethodGet, body: strings.NewReader("x")},
		{name: "WebSocket upgrade", method: http.MethodGet, header: upgrade},
		{name: "body-less POST (not idempotent)", method: http.MethodPost},
		{name: "body-less DELETE (not idempotent)", method: http.MethodDelete},
		{name: "PUT with a body", method: http.MethodPut, body: strings.NewReader("x")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(tt.method, "http://gw.example/a/x", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != nil {
				r.Header = tt.header
			}
			if got := isDirect(r); got != tt.want {
				t.Errorf("isDirect = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSlowUploadThenPromptAnswer: a request with a body does not take the direct transport, so
// the clock starts once the body is written: an upload slower than the timeout, answered at
// once, gets the upstream's 200.
func TestSlowUploadThenPromptAnswer(t *testing.T) {
	const timeout = 100 * time.Millisecond
	up := newScripted(t, func(w net.Conn, r *http.Request, _ int) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "upload", PathPrefix: "/", Target: mustURL(t, up.url), Timeout: timeout},
	}})
	pw, done := startSlowUpload(t, front.Client(), front.URL+"/up")
	time.Sleep(5 * timeout) // the upstream reads the first part and waits for the rest
	if _, err := io.WriteString(pw, " and the rest"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case got := <-done:
		if got != http.StatusOK {
			t.Fatalf("status %d, want 200: the timeout must not count the upload", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
}

// TestWebSocketOutlivesTimeout: an upgrade does not take the direct transport, so a tunnel
// that is quiet upstream for longer than the timeout is not cut.
func TestWebSocketOutlivesTimeout(t *testing.T) {
	ws := newWSEcho(t, make(chan http.Header, 1))
	const timeout = 100 * time.Millisecond
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "ws", PathPrefix: "/", Target: mustURL(t, ws.URL), Timeout: timeout},
	}})
	conn, br, res := wsDial(t, front.URL, "dGhlIHNhbXBsZSBub25jZQ==", "")
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", res.StatusCode)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		time.Sleep(3 * timeout) // quiet for longer than the timeout
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		if got, err := br.ReadString('\n'); err != nil || got != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}
