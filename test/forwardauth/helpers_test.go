// Package forwardauth tests authgate in front of legacy APIs: forward-auth (/.auth/check and
// /.auth/start) behind a real nginx with auth_request, the Traefik and Envoy forms, and API
// clients that authenticate with bearer JWTs.
package forwardauth

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// clock is an injected time source that tests move forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// do sends a request with the given headers through a client that does not follow redirects
// and returns the response with its body read.
func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header[k] = []string{v} // as given: no canonicalisation (underscore spellings)
	}
	c := &http.Client{Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// jsonField returns one string field of a JSON object body ("" when absent or not JSON).
func jsonField(body, field string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	s, _ := m[field].(string)
	return s
}

// identityHeaders are the headers a gateway-authenticated request carries to the upstream.
func identityHeaders() []string {
	return []string{"X-Auth-User-Id", "X-Auth-Subject", "X-Auth-Email", "X-Auth-Name", "X-Auth-Roles",
		"X-Auth-Groups", "X-Auth-Identity"}
}
