package gateway

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdPClientKeepsConnections: concurrent token exchanges reuse the default IdP client's
// connections instead of opening one per request (http.DefaultTransport keeps only 2 idle).
func TestIdPClientKeepsConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Millisecond) // keep requests overlapping
		_, _ = io.WriteString(w, `{"access_token":"x"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newIdPClient()
	if c.Timeout <= 0 {
		t.Fatal("the IdP client has no timeout")
	}
	const workers, each = 16, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				resp, err := c.Post(srv.URL+"/oauth/token", "application/x-www-form-urlencoded", nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	// About one connection per worker; DefaultTransport (2 idle per host) opens well over 100
	// here. Not exactly one: a request that finds no idle connection dials, and when another
	// is returned to the pool meanwhile it takes that one, and the dialed one joins the pool.
	if n := conns.Load(); n > 2*workers {
		t.Errorf("%d connections for %d requests by %d workers, want <= %d", n, workers*each, workers, 2*workers)
	}
}
