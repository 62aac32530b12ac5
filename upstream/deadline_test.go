package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHeaderScan(t *testing.T) {
	for _, tt := range []struct {
		name   string
		chunks []string
		want   int // index in the last chunk just past the final header block, or -1
	}{
		{name: "CRLF", chunks: []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, want: 38},
		{name: "bare LF", chunks: []string{"HTTP/1.1 200 OK\nA: b\n\nbody"}, want: 22},
		{name: "LF then CRLF", chunks: []string{"HTTP/1.1 204 No Content\n\r\n"}, want: 26},
		{name: "no header lines", chunks: []string{"HTTP/1.1 200 OK\r\n\r\n"}, want: 19},
		{name: "not ended", chunks: []string{"HTTP/1.1 200 OK\r\nA: b\r\n"}, want: -1},
		{name: "split inside the empty line", chunks: []string{"HTTP/1.1 200 OK\r\nA: b\r\n\r", "\nrest"}, want: 1},
		{name: "split after LF", chunks: []string{"HTTP/1.1 200 OK\r\nA: b\r\n", "\r\n"}, want: 2},
		{name: "one byte at a time", chunks: strings.Split("HTTP/1.1 200 OK\r\nA: b\r\n\r\n", ""), want: 1},
		{name: "CR inside a line is not a line end", chunks: []string{"HTTP/1.1 200 OK\r\nA: b\rc\r\n"}, want: -1},
		{name: "103 then 200", chunks: []string{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nok"}, want: 59},
		{name: "103 alone", chunks: []string{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"}, want: -1},
		{name: "100 then 200 in pieces", chunks: []string{"HTTP/1.1 1", "00 Continue\r\n\r\nHTTP/1.1 2", "00 OK\r\n\r\n"}, want: 9},
		{name: "status digit in its own piece", chunks: []string{"HTTP/1.1 ", "1", "03 x\r\n\r\n"}, want: -1},
		{name: "short status line", chunks: []string{"HTTP/1\n\n"}, want: 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s headerScan
			got := -1
			for i, c := range tt.chunks {
				got = s.feed([]byte(c))
				if got >= 0 && i != len(tt.chunks)-1 {
					t.Fatalf("ended in chunk %d of %d", i, len(tt.chunks))
				}
			}
			if got != tt.want {
				t.Errorf("feed = %d, want %d", got, tt.want)
			}
		})
	}
}

// scanReference is headerScan's definition, byte by byte: the offset just past the final
// header block of b, or -1.
func scanReference(b []byte) int {
	start := 0
	for {
		end := -1
		nl := false
		for i := start; i < len(b); i++ {
			switch c := b[i]; {
			case c == '\n' && nl:
				end = i + 1
			case c == '\n':
				nl = true
			case c != '\r':
				nl = false
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			return -1
		}
		if start+statusDigit < len(b) && start+statusDigit < end && b[start+statusDigit] == '1' {
			start = end
			continue
		}
		return end
	}
}

// FuzzHeaderScan: fed whole or in two pieces split anywhere, headerScan finds the end the
// byte-by-byte reference finds.
func FuzzHeaderScan(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 7)
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\n\nok"), 40)
	f.Add([]byte("HTTP/1.1 200 OK\n\r\r\n\n"), 17)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		want := scanReference(b)
		var whole headerScan
		if got := whole.feed(b); got != want {
			t.Fatalf("whole: %d, want %d", got, want)
		}
		if len(b) == 0 {
			return
		}
		split = (split%len(b) + len(b)) % len(b)
		var s headerScan
		got := s.feed(b[:split])
		if got < 0 {
			if got = s.feed(b[split:]); got >= 0 {
				got += split
			}
		}
		if got != want {
			t.Fatalf("split at %d: %d, want %d", split, got, want)
		}
	})
}

// rawUpstream accepts connections and answers each request it reads with respond, which
// writes to the connection as it likes; it counts the connections accepted.
func rawUpstream(t *testing.T, respond func(w io.Writer, r *http.Request)) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					respond(c, r)
				}
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// TestFastTransportTimeout: a body-less GET to a plain-HTTP upstream goes over the fast
// transport, which times out the response's header block (not its body) on the connection.
func TestFastTransportTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	addr, conns := rawUpstream(t, func(w io.Writer, r *http.Request) {
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
	})
	front, p := newFront(t, Options{Routes: []Route{
		{Name: "raw", PathPrefix: "/", Target: mustURL(t, "http://"+addr), Timeout: timeout},
	}})
	if p.fast[0] == nil {
		t.Fatal("a plain-HTTP route with a timeout has no fast transport")
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
		before := conns.Load()
		for range 3 {
			if status, body, _ := get(t, "/ok"); status != http.StatusOK || body != "ok" {
				t.Fatalf("got %d %q", status, body)
			}
			time.Sleep(3 * timeout) // idle far longer than the timeout: the deadline is cleared
		}
		if n := conns.Load() - before; n != 1 {
			t.Errorf("%d upstream connections for 3 requests, want 1 kept alive", n)
		}
	})
}

// TestFastTransportNotForBodiesOrUpgrades: only body-less, non-upgrade requests to plain-HTTP
// upstreams take the fast transport; the rest keep ResponseHeaderTimeout (the upload and
// WebSocket tests check the behaviour; this checks the choice).
func TestFastTransportNotForBodiesOrUpgrades(t *testing.T) {
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
	if p.fast[0] == nil || p.fast[1] != nil || p.fast[2] == nil || p.fast[0].Transport != p.fast[2].Transport {
		t.Fatalf("fast proxies %v, want plain routes only, sharing one transport", p.fast)
	}
	if tr := p.fast[0].Transport.(*http.Transport); tr.ResponseHeaderTimeout != 0 {
		t.Errorf("fast transport has ResponseHeaderTimeout %v, want 0 (the connection enforces it)", tr.ResponseHeaderTimeout)
	}
}

// TestSlowUploadThenPromptAnswer: a request with a body does not take the fast transport, so
// the clock starts once the body is written: an upload slower than the timeout, answered at
// once, gets the upstream's 200.
func TestSlowUploadThenPromptAnswer(t *testing.T) {
	const timeout = 100 * time.Millisecond
	addr, _ := rawUpstream(t, func(w io.Writer, r *http.Request) {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "upload", PathPrefix: "/", Target: mustURL(t, "http://"+addr), Timeout: timeout},
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

// TestFastTransportWebSocketOutlivesTimeout: an upgrade does not take the fast transport, so
// a tunnel that is quiet upstream for longer than the timeout is not cut.
func TestFastTransportWebSocketOutlivesTimeout(t *testing.T) {
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
