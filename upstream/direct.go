package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Most forwarded requests are a GET (or HEAD, OPTIONS, TRACE) without a body or an upgrade,
// to a plain-HTTP upstream. http.Transport carries each of them through two goroutines per
// connection (writeLoop, readLoop) and hands the request and the response between them and
// the handler over channels: four goroutine switches and a timer per round trip, about 6 µs
// of CPU in a loopback benchmark (docs/benchmarks.md), a tenth of a gateway's whole cost per
// request. directTransport does such a round trip on the handler's goroutine: it writes the
// request with Request.Write, reads the response with http.ReadResponse (net/http's own
// writer and parser) and keeps connections in a pool of its own.
//
// What http.Transport's readLoop does for an idle connection, directTransport does when it
// takes one from the pool: a connection whose peer has closed it, or that holds bytes nobody
// asked for (an upstream answering twice to one request), is discarded, so that no response
// can reach the wrong request. A request that finds a reused connection dead before any byte
// of the response arrived is retried on another one, as http.Transport retries idempotent
// requests: hence the idempotent methods only.

// directTransport is an HTTP/1.1 RoundTripper for body-less, non-upgrade GET, HEAD, OPTIONS
// and TRACE requests to plain-HTTP upstreams (see directable); it refuses anything else.
// Timeout bounds the wait for the response headers from the moment the request is written
// (0: no bound); the request's context aborts the round trip and the body read. The returned
// Body must be read to EOF for the connection to be reused, and closed; Read and Close must
// not be called concurrently (ReverseProxy calls both from the handler's goroutine).
type directTransport struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout     time.Duration
	maxIdle     int              // idle connections kept per host
	idleTimeout time.Duration    // idle connections older than this are closed
	maxHeader   int64            // bytes of response header blocks (1xx ones included) per response
	now         func() time.Time // the clock of idle ages (tests replace it)

	mu    sync.Mutex
	idle  map[string][]*directConn // per host:port, the most recently used last
	sweep *time.Timer              // the pending idle sweep; nil when none is
}

func newDirectTransport(dial func(context.Context, string, string) (net.Conn, error), timeout time.Duration, maxIdle int) *directTransport {
	return &directTransport{
		dial:        dial,
		timeout:     timeout,
		maxIdle:     maxIdle,
		idleTimeout: 90 * time.Second,
		maxHeader:   1 << 20,
		now:         time.Now,
		idle:        map[string][]*directConn{},
	}
}

// max1xx bounds the informational responses before the final one.
const max1xx = 5

// directable reports whether r can be sent over a directTransport: what isDirect checks on
// the incoming request, on the outgoing one, and its header names and values.
func directable(r *http.Request) error {
	if r.URL.Scheme != "http" || !isDirect(r) {
		return fmt.Errorf("upstream: direct transport cannot carry %s %s (needs a body-less, non-upgrade GET, HEAD, OPTIONS or TRACE to http://)", r.Method, r.URL.Scheme)
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("upstream: invalid value of header field %q", k)
			}
		}
	}
	return nil
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// RoundTrip sends req and reads the response's header block, on the caller's goroutine.
func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := directable(req); err != nil {
		return nil, err
	}
	ctx, addr := req.Context(), hostPort(req.URL)
	for attempt := 0; ; attempt++ {
		// After two reused connections that died under the request, dial a fresh one.
		pc, reused, err := t.conn(ctx, addr, attempt >= 2)
		if err != nil {
			return nil, err
		}
		res, err := t.exchange(ctx, pc, req)
		if err == nil {
			return res, nil
		}
		_ = pc.Close()
		var retry *retryableError
		if !reused || !errors.As(err, &retry) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// hostPort is u's host with the port, 80 when u has none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// retryableError is a round trip that failed on a reused connection before any byte of the
// response arrived: the connection was dead, and the (idempotent) request may be sent again.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// exchange writes req on pc and reads the response's header block. The context watch it
// starts ends with the body (directBody), so that a client going away mid-body closes the
// upstream connection.
func (t *directTransport) exchange(ctx context.Context, pc *directConn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, pc.abort)
	if t.timeout > 0 {
		// Armed before writing, so no byte of the response is read before it.
		if err := pc.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
			stop()
			return nil, err
		}
	}
	pc.head.limit(t.maxHeader)
	res, err := t.writeAndRead(pc, req)
	if err != nil {
		stop()
		return nil, t.headError(ctx, pc, err)
	}
	pc.head.limit(-1)
	if t.timeout > 0 {
		if err := pc.SetReadDeadline(time.Time{}); err != nil {
			stop()
			return nil, err
		}
		if pc.aborted.Load() { // the context ended while the deadline was being cleared
			_ = pc.SetDeadline(aLongTimeAgo)
		}
	}
	keep := !res.Close
	if res.Body == http.NoBody {
		t.release(pc, keep, stop)
		return res, nil
	}
	res.Body = &directBody{rc: res.Body, pc: pc, t: t, keep: keep, stop: stop}
	return res, nil
}

// writeAndRead writes req and reads responses until the final one, handing 1xx ones to the
// request's httptrace.ClientTrace (ReverseProxy forwards them to the client).
func (t *directTransport) writeAndRead(pc *directConn, req *http.Request) (*http.Response, error) {
	if err := req.Write(pc.bw); err != nil {
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		res, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, err
		}
		code := res.StatusCode
		switch {
		case code >= 200 || code < 100:
			return res, nil
		case code == http.StatusSwitchingProtocols:
			return nil, errors.New("upstream: 101 Switching Protocols answers a request that asked for no upgrade")
		case n == max1xx:
			return nil, fmt.Errorf("upstream: more than %d informational (1xx) responses", max1xx)
		}
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// headError classifies a failure to write the request or read its header block.
func (t *directTransport) headError(ctx context.Context, pc *directConn, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("upstream: %w (%w)", ctx.Err(), err)
	case errors.Is(err, errHeadTooLarge):
		return fmt.Errorf("upstream: response headers exceed %d bytes", t.maxHeader)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errHeaderTimeout
	case pc.head.read == 0 && isConnLoss(err):
		return &retryableError{err}
	}
	return err
}

// isConnLoss reports whether err is the peer having closed or reset the connection.
func isConnLoss(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// aLongTimeAgo is a deadline in the past: it fails blocked and later reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn takes the most recently used live idle connection to addr, or dials one (always with
// fresh). reused reports which.
func (t *directTransport) conn(ctx context.Context, addr string, fresh bool) (pc *directConn, reused bool, err error) {
	for !fresh {
		if pc = t.pop(addr); pc == nil {
			break
		}
		if pc.usable() {
			return pc, true, nil
		}
		_ = pc.Close()
	}
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return newDirectConn(c, addr), false, nil
}

func (t *directTransport) pop(addr string) *directConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	stack := t.idle[addr]
	if len(stack) == 0 {
		return nil
	}
	pc := stack[len(stack)-1]
	stack[len(stack)-1] = nil
	t.idle[addr] = stack[:len(stack)-1]
	return pc
}

// release ends a round trip: the connection goes back to the pool when its response was
// read whole, it may be kept alive and the context watch had not fired; otherwise it is
// closed.
func (t *directTransport) release(pc *directConn, keep bool, stop func() bool) {
	if !stop() || !keep || pc.br.Buffered() > 0 {
		_ = pc.Close()
		return
	}
	pc.idleSince = t.now()
	t.mu.Lock()
	stack := t.idle[pc.addr]
	if len(stack) >= t.maxIdle {
		t.mu.Unlock()
		_ = pc.Close()
		return
	}
	t.idle[pc.addr] = append(stack, pc)
	if t.sweep == nil && t.idleTimeout > 0 {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
	t.mu.Unlock()
}

// sweepIdle closes the connections idle for idleTimeout or longer and schedules itself for
// the next one to reach it: one timer per transport, not per request.
func (t *directTransport) sweepIdle() {
	now := t.now()
	var stale []*directConn
	var next time.Duration
	t.mu.Lock()
	for addr, stack := range t.idle {
		i := 0 // stacks are ordered oldest first
		for i < len(stack) && now.Sub(stack[i].idleSince) >= t.idleTimeout {
			i++
		}
		stale = append(stale, stack[:i]...)
		n := copy(stack, stack[i:])
		clear(stack[n:])
		if n == 0 {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = stack[:n]
		if wait := t.idleTimeout - now.Sub(stack[0].idleSince); next == 0 || wait < next {
			next = wait
		}
	}
	if t.sweep != nil {
		t.sweep.Stop() // when called other than by the timer (tests)
	}
	t.sweep = nil
	if next > 0 {
		t.sweep = time.AfterFunc(next, t.sweepIdle)
	}
	t.mu.Unlock()
	for _, pc := range stale {
		_ = pc.Close()
	}
}

// CloseIdleConnections closes the pooled connections.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*directConn{}
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, stack := range idle {
		for _, pc := range stack {
			_ = pc.Close()
		}
	}
}

// directConn is one upstream connection of a directTransport.
type directConn struct {
	net.Conn
	addr      string
	raw       syscall.RawConn // for the liveness check; nil when the connection has none
	head      headLimit       // what br reads through
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	aborted   atomic.Bool // the request's context ended (see abort)
}

func newDirectConn(c net.Conn, addr string) *directConn {
	pc := &directConn{Conn: c, addr: addr, bw: bufio.NewWriterSize(c, 4<<10)}
	if sc, ok := c.(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
	}
	pc.head.c = c
	pc.br = bufio.NewReaderSize(&pc.head, 4<<10)
	return pc
}

// abort fails the connection's blocked and later reads and writes; the context watch calls
// it. The flag is set first, so that clearing the header deadline cannot undo it unseen.
func (pc *directConn) abort() {
	pc.aborted.Store(true)
	_ = pc.SetDeadline(aLongTimeAgo)
}

// usable reports whether an idle connection may carry a request: nothing buffered, and the
// socket neither closed by the peer nor holding unread bytes (peekIdle).
func (pc *directConn) usable() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if pc.raw == nil {
		return true
	}
	ok := false
	if err := pc.raw.Read(func(fd uintptr) bool { ok = peekIdle(fd); return true }); err != nil {
		return false
	}
	return ok
}

// headLimit sits between a connection and its bufio.Reader: it counts the bytes read since
// the last limit call and, while limited, fails reads beyond the limit with errHeadTooLarge.
type headLimit struct {
	c    net.Conn
	left int64 // bytes still allowed; negative: no limit
	read int64 // bytes read since limit
}

var errHeadTooLarge = errors.New("upstream: response header block too large")

// limit allows n more bytes (n < 0: any number) and restarts the count of bytes read.
func (l *headLimit) limit(n int64) { l.left, l.read = n, 0 }

func (l *headLimit) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, errHeadTooLarge
	}
	if l.left > 0 && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.c.Read(p)
	l.read += int64(n)
	if l.left > 0 {
		l.left -= int64(n)
	}
	return n, err
}

// directBody is the body of a response read by a directTransport: at EOF it hands the
// connection back (directTransport.release); closed before, it closes the connection (the
// rest of the body is never drained: the upstream may be stalled).
type directBody struct {
	rc   io.ReadCloser
	pc   *directConn
	t    *directTransport
	keep bool
	stop func() bool
	err  error // set once the connection is released or closed
}

var errBodyClosed = errors.New("upstream: read on a closed response body")

func (b *directBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.err = err
		b.t.release(b.pc, b.keep && err == io.EOF, b.stop)
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.err == nil {
		b.err = errBodyClosed
		b.stop()
		_ = b.pc.Close()
	}
	return nil
}
