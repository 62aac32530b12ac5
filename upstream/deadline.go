package upstream

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// A route's Timeout bounds the wait for the response headers once the request is written.
// http.Transport's ResponseHeaderTimeout does that with a timer and a channel per request,
// which costs about 1.5 µs of CPU a request on a busy gateway (a channel timer enters and
// leaves the runtime's timer heap each time the round trip blocks on it): a few percent of
// an authenticated request's whole cost. For the common request, a body-less one to a
// plain-HTTP upstream that is not an upgrade, the route's fast transport enforces the same
// bound on the connection instead: deadlineConn sets a read deadline as the request is
// written and clears it when the response's final header block has been read. Requests with
// a body (the clock must start once the body is written, which the connection cannot see),
// upgrades (after a 101 the connection carries a stream) and TLS upstreams (their reads carry
// TLS records that are not the response) keep the transport with ResponseHeaderTimeout.

// deadlineDialer returns a DialContext that wraps each connection in a deadlineConn with
// timeout d.
func deadlineDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), d time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, d: d}, nil
	}
}

// deadlineConn is an upstream connection of a fast transport. http.Transport writes a
// request (in its writeLoop) only once the previous response has been read, and reads (in its
// readLoop) only responses, so: Write arms the read deadline, Read scans the response and
// disarms it at the end of the final header block. A read that hits the deadline while armed
// fails with errHeaderTimeout (the transport then closes the connection and the proxy answers
// 504).
type deadlineConn struct {
	net.Conn
	d     time.Duration
	armed atomic.Bool
	scan  headerScan // used by the reading goroutine only, while armed
}

// Write arms the deadline before writing, so that no response byte can be read before it is
// armed; the bound thus also covers writing the request's header (a few KiB at most).
func (c *deadlineConn) Write(b []byte) (int, error) {
	if !c.armed.Load() {
		c.scan = headerScan{}
		c.armed.Store(true)
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.armed.Load() {
		return n, err
	}
	if n > 0 && c.scan.feed(b[:n]) >= 0 {
		c.armed.Store(false)
		if derr := c.Conn.SetReadDeadline(time.Time{}); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.armed.Load() {
		err = errHeaderTimeout
	}
	return n, err
}

// headerScan finds the end of an HTTP/1.x response's final header block in bytes fed in any
// pieces: an empty line ("\n\n" or "\n\r\n"; Go's reader accepts bare LF line ends), after a
// block whose status code does not start with 1 (1xx interim blocks are followed by another).
// The zero value is at the start of a response.
type headerScan struct {
	pos     int  // bytes of the current block seen so far
	nl      bool // the bytes since the last '\n' are only '\r's
	interim bool // the current block's status code starts with '1'
}

// feed scans the next bytes of the response and returns the index in b just past the final
// header block's end, or -1 when it has not ended yet. After it has ended, feed must not be
// called again without resetting the scan.
func (s *headerScan) feed(b []byte) int {
	for i := 0; i < len(b); {
		if s.pos > statusDigit && !s.nl {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				s.pos += len(b) - i
				return -1
			}
			s.pos += j + 1
			i += j + 1
			s.nl = true
			continue
		}
		c := b[i]
		if s.pos == statusDigit {
			s.interim = c == '1'
		}
		s.pos++
		i++
		switch {
		case c == '\n' && s.nl:
			if !s.interim {
				return i
			}
			*s = headerScan{} // a 1xx block: the final one follows
		case c == '\n':
			s.nl = true
		case c != '\r':
			s.nl = false
		}
	}
	return -1
}

// statusDigit is the offset of the status code's first digit in "HTTP/1.1 200 OK".
const statusDigit = len("HTTP/1.1 ")
