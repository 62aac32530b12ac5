package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzDirectResponse: whatever an upstream answers to a request, the direct transport
// neither panics nor hangs, and no byte of that answer reaches the next request (response
// queue poisoning): the next GET gets the upstream's next, clean, response.
func FuzzDirectResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nabc",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\npoison",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
		"garbage\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	const clean = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean"
	f.Fuzz(func(t *testing.T, answer []byte) {
		up := newScripted(t, func(c net.Conn, r *http.Request, _ int) bool {
			if r.URL.Path == "/fuzz" {
				_, _ = c.Write(answer)
			} else {
				_, _ = io.WriteString(c, clean)
			}
			return true
		})
		dt := newDirectTransport((&net.Dialer{Timeout: time.Second}).DialContext, 2*time.Second, 4)
		defer dt.CloseIdleConnections()

		// A response that never ends is cut by the context; its connection is not kept.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.url+"/fuzz", nil)
		if res, err := dt.RoundTrip(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
		}
		cancel()

		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second) // a hang fails
		defer cancel()
		res, body, err := roundTrip(ctx, dt, http.MethodGet, up.url+"/next")
		if err != nil || res.StatusCode != http.StatusOK || body != "clean" {
			t.Fatalf("after the answer %q, the next GET got %v, %q, %v", answer, res, body, err)
		}
	})
}
