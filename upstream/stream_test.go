package upstream

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	logs := &logBuffer{}
	front, _ := newFront(t, Options{Logger: logs.logger(), Routes: []Route{
		{Name: "down", PathPrefix: "/", Target: mustURL(t, deadURL)},
	}})
	tests := []struct {
		name, accept, wantType, wantBody string
	}{
		{name: "API client gets JSON", accept: "application/json", wantType: "application/json",
			wantBody: `{"error":"upstream_unavailable"}` + "\n"},
		{name: "no Accept gets JSON", wantType: "application/json", wantBody: `{"error":"upstream_unavailable"}` + "\n"},
		{name: "browser gets HTML", accept: "text/html,application/xhtml+xml", wantType: "text/html; charset=utf-8",
			wantBody: bodyUnavailableHTML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/x", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadGateway || res.Header.Get("Content-Type") != tt.wantType ||
				string(body) != tt.wantBody {
				t.Fatalf("got %d %q %q, want 502 %q %q", res.StatusCode, res.Header.Get("Content-Type"), body, tt.wantType, tt.wantBody)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", res.Header.Get("Cache-Control"))
			}
		})
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "route=down") ||
		!strings.Contains(l, "status=502") || !strings.Contains(l, "refused") {
		t.Errorf("log = %q, want a warn line with route, status and the dial error", l)
	}
}

func TestProxyTimeoutKeepsOtherRoutesServing(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	echo := newEcho(t)
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "slow", PathPrefix: "/slow/", Target: mustURL(t, slow.URL), Timeout: 50 * time.Millisecond},
		{Name: "fast", PathPrefix: "/fast/", Target: mustURL(t, echo.URL), Timeout: 5 * time.Second},
	}})
	t.Cleanup(func() { close(release) }) // runs before the servers close

	type result struct {
		status int
		body   string
	}
	slowDone := make(chan result, 1)
	go func() {
		res, err := front.Client().Get(front.URL + "/slow/x")
		if err != nil {
			slowDone <- result{body: err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		slowDone <- result{status: res.StatusCode, body: string(b)}
	}()

	res, err := front.Client().Get(front.URL + "/fast/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	decodeEcho(t, res, b)

	var got result
	select {
	case got = <-slowDone:
	case <-time.After(10 * time.Second): // far above the 50ms route timeout
		t.Fatal("slow route never timed out")
	}
	if got.status != http.StatusGatewayTimeout || got.body != `{"error":"upstream_timeout"}`+"\n" {
		t.Fatalf("slow route: %d %q, want 504 upstream_timeout", got.status, got.body)
	}
}

// newSSE starts an upstream that sends one event, then a second one after next is closed.
func newSSE(t *testing.T, next chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Set-Cookie", "__Host-authgate=stolen; Path=/")
		_, _ = io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProxySSEStreamsAndOutlivesTimeout(t *testing.T) {
	next := make(chan struct{})
	sse := newSSE(t, next)
	front, p := newFront(t, Options{Transport: serveTimerTransport(t), Routes: []Route{
		{Name: "events", PathPrefix: "/", Target: mustURL(t, sse.URL), Timeout: time.Hour},
	}})
	clock := newFakeClock()
	p.after = clock.after

	res, err := front.Client().Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Set-Cookie") != "" {
		t.Errorf("HDR-15: Set-Cookie for the gateway cookie reached the client: %q", res.Header.Get("Set-Cookie"))
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
		t.Fatalf("first event = %q, %v; want it before the upstream handler finishes", line, err)
	}
	fire := clock.next(t)
	fire() // the header deadline passes after headers arrived: the stream must go on
	close(next)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest of stream = %q, %v; want the second event", rest, err)
	}
}

func TestProxyTimeoutBeforeHeaders(t *testing.T) {
	block := make(chan struct{})
	slow := newHangingUpstream(t, nil, block)
	front, p := newFront(t, Options{Transport: serveTimerTransport(t), Routes: []Route{
		{Name: "slow", PathPrefix: "/", Target: mustURL(t, slow.URL), Timeout: time.Hour},
	}})
	t.Cleanup(func() { close(block) }) // runs before the servers close
	clock := newFakeClock()
	p.after = clock.after
	tests := []struct {
		name   string
		method string
		body   string
	}{
		{name: "GET armed at once", method: http.MethodGet},
		{name: "POST armed once the body is written", method: http.MethodPost, body: strings.Repeat("x", 100<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan *http.Response, 1)
			go func() {
				req, _ := http.NewRequest(tt.method, front.URL+"/x", strings.NewReader(tt.body))
				req.Header.Set("Accept", "text/html")
				res, err := front.Client().Do(req)
				if err != nil {
					t.Error(err)
				}
				done <- res
			}()
			fire := clock.next(t)
			fire()
			res := <-done
			if res == nil {
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusGatewayTimeout || string(b) != bodyTimeoutHTML {
				t.Fatalf("got %d %q, want 504 with the HTML timeout page", res.StatusCode, b)
			}
		})
	}
}

func TestProxyTimeoutExcludesUpload(t *testing.T) {
	started := make(chan struct{}, 1)
	block := make(chan struct{})
	slow := newHangingUpstream(t, started, block)
	front, p := newFront(t, Options{Transport: serveTimerTransport(t), Routes: []Route{
		{Name: "upload", PathPrefix: "/", Target: mustURL(t, slow.URL), Timeout: time.Hour},
	}})
	t.Cleanup(func() { close(block) }) // runs before the servers close
	clock := newFakeClock()
	p.after = clock.after

	pw, done := startSlowUpload(t, front.Client(), front.URL+"/up")
	<-started // the upstream has the request headers: Serve is running and the body is streaming
	select {
	case <-clock.armed:
		t.Fatal("header deadline armed while the request body was still uploading")
	default:
	}
	pw.Close()
	clock.next(t)()
	if got := <-done; got != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504 once the body is written and the deadline passes", got)
	}
}

func TestProxyDropsGatewaySetCookies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range []string{
			"__Host-authgate=attacker; Path=/; Secure",
			"theme=dark; Path=/",
			"=__Host-authgate=nameless",
			"__Host-authgate-tx",
			" __Host-authgate-tx = x",
			"lang=en",
		} {
			w.Header().Add("Set-Cookie", c)
		}
	}))
	t.Cleanup(up.Close)
	front, _ := newFront(t, Options{Routes: []Route{{Name: "r", PathPrefix: "/", Target: mustURL(t, up.URL)}}})
	res, err := front.Client().Get(front.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	got := res.Header["Set-Cookie"]
	if len(got) != 2 || got[0] != "theme=dark; Path=/" || got[1] != "lang=en" {
		t.Fatalf("HDR-15: Set-Cookie = %q, want only the app's cookies", got)
	}
}

// wsAccept computes Sec-WebSocket-Accept (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// newWSEcho starts an upstream that completes a WebSocket handshake (answering 101 to any
// Upgrade it receives) and then echoes raw bytes; it reports the request headers it saw.
func newWSEcho(t *testing.T, seen chan<- http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		proto := r.Header.Get("Upgrade")
		if proto == "" {
			proto = "h2c" // a hostile upstream switching although nothing was asked
		}
		_, _ = io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+proto+
			"\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+wsAccept(r.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// wsDial opens a raw connection to front, sends a WebSocket upgrade for /ws with key (and the
// extra header lines, each ending in CRLF) and reads the answer's head. The connection is
// closed at cleanup and has a 10 s deadline.
func wsDial(t *testing.T, front, key, extra string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", hostOf(t, front))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n"+extra+"\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, res
}

func TestProxyWebSocket(t *testing.T) {
	seen := make(chan http.Header, 1)
	ws := newWSEcho(t, seen)
	front, _ := newFront(t, Options{Routes: []Route{
		{Name: "api-ws", PathPrefix: "/", Target: mustURL(t, ws.URL), Timeout: time.Second},
	}})
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	conn, br, res := wsDial(t, front.URL, key, "X-Auth-User-Id: forged\r\n")
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake: %d accept=%q", res.StatusCode, res.Header.Get("Sec-WebSocket-Accept"))
	}
	h := <-seen
	if h.Get("Upgrade") != "websocket" || h.Get("X-Auth-User-Id") != "u-1" || len(h["X-Auth-User-Id"]) != 1 {
		t.Errorf("upstream saw Upgrade=%q X-Auth-User-Id=%q, want websocket and u-1", h.Get("Upgrade"), h["X-Auth-User-Id"])
	}
	// Echo through the tunnel; the 1s route timeout must not cut it (headers already arrived).
	for _, msg := range []string{"ping\n", "pong\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		if got, err := br.ReadString('\n'); err != nil || got != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

func TestProxyRefusesUnrequestedProtocolSwitch(t *testing.T) {
	seen := make(chan http.Header, 1)
	ws := newWSEcho(t, seen)
	front, _ := newFront(t, Options{Routes: []Route{{Name: "r", PathPrefix: "/", Target: mustURL(t, ws.URL)}}})
	res, body := rawDo(t, hostOf(t, front.URL), "GET / HTTP/1.1\r\nHost: gw\r\nUpgrade: h2c\r\n"+
		"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n")
	if h := <-seen; h.Get("Upgrade") != "" {
		t.Errorf("ROB-12: upstream saw Upgrade %q", h.Get("Upgrade"))
	}
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("ROB-12/14: status %d body %q, want 502 and no tunnel", res.StatusCode, body)
	}
}

func TestServeClientGoneWritesNothing(t *testing.T) {
	echo := newEcho(t)
	logs := &logBuffer{}
	p, err := New(Options{Logger: logs.logger(), Routes: []Route{{Name: "r", PathPrefix: "/", Target: mustURL(t, echo.URL)}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	p.Serve(w, r, 0, nil)
	if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Fatalf("wrote %q (%v), want nothing for a client that went away", w.Body.String(), w.Header())
	}
	if l := logs.String(); strings.Contains(l, "level=WARN") || !strings.Contains(l, "client went away") {
		t.Fatalf("log = %q, want one debug line and no warning", l)
	}
}

func TestServeUnknownRoute(t *testing.T) {
	p, err := New(Options{Routes: []Route{{Name: "r", PathPrefix: "/", Target: mustURL(t, "http://127.0.0.1:1")}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{-1, 1} {
		w := httptest.NewRecorder()
		p.Serve(w, httptest.NewRequest(http.MethodGet, "/", nil), i, nil)
		if w.Code != http.StatusBadGateway {
			t.Errorf("Serve(route %d) = %d, want 502", i, w.Code)
		}
	}
}

func TestProxyHTTP2ClientHeadersStripped(t *testing.T) {
	echo := newEcho(t)
	p, err := New(Options{GatewayCookies: gatewayCookie, Routes: []Route{{Name: "public", PathPrefix: "/", Target: mustURL(t, echo.URL)}}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(frontFor(t, p))
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/x", nil)
	req.Header["x-auth-user-id"] = []string{"admin"}
	req.Header["x_auth_roles"] = []string{"admin"}
	req.Header["cookie"] = []string{"__Host-authgate=s", "app=1"}
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("front spoke %s, want HTTP/2", res.Proto)
	}
	got := decodeEcho(t, res, b)
	for k := range got.Header {
		if IsIdentityHeader(k) {
			t.Errorf("HDR-16: upstream received %s", k)
		}
	}
	if c := strings.Join(got.Header["Cookie"], "; "); c != "app=1" {
		t.Errorf("Cookie = %q, want app=1", c)
	}
	if got.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got.Header.Get("X-Forwarded-Proto"))
	}
}
