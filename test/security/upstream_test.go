package security

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// TestUpstreamDoubleAnswerReachesNobodyElse: an upstream that answers one user's request
// twice (the second answer crafted to look like a page of someone else's) must not have that
// extra answer delivered to the next user's request over a reused upstream connection
// (response queue poisoning through the gateway's connection pool). Every answer names the
// X-Auth-Subject it was given, so a misdelivered one is visible.
func TestUpstreamDoubleAnswerReachesNobodyElse(t *testing.T) {
	target, _ := url.Parse("http://" + fixture.ServeTCP(t, answerNaming))
	g := fixture.StartGateway(t, fixture.GatewayOptions{Routes: []gateway.Route{
		{Route: upstream.Route{Name: "raw", PathPrefix: "/", Target: target}},
	}})
	_, bob := loginAs(t, g, "bob")
	_, alice := loginAs(t, g, "alice")
	own := func(cookie string) string { // what the upstream answers this user
		t.Helper()
		resp, body := sendRaw(t, g.URL, rawReq{target: "/mine", headers: []string{cookie}})
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "for ") || body == "for " {
			t.Fatalf("baseline: %d %q", resp.StatusCode, body)
		}
		return body
	}
	bobs, alices := own(bob), own(alice)
	if bobs == alices {
		t.Fatalf("bob and alice get the same answer %q", bobs)
	}

	for _, path := range []string{"/double", "/head-with-body"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			method := http.MethodGet
			if path == "/head-with-body" {
				method = http.MethodHead
			}
			resp, body := sendRaw(t, g.URL, rawReq{method: method, target: path, headers: []string{bob}})
			if resp.StatusCode != http.StatusOK || (method == http.MethodGet && body != bobs) {
				t.Fatalf("bob: %d %q", resp.StatusCode, body)
			}
			for range 3 {
				resp, body = sendRaw(t, g.URL, rawReq{target: "/mine", headers: []string{alice}})
				if resp.StatusCode != http.StatusOK || body != alices {
					t.Fatalf("alice's request got %d %q, want her own %q", resp.StatusCode, body, alices)
				}
			}
		})
	}
}

// answerNaming serves one upstream connection: every answer's body is "for <X-Auth-Subject>";
// /double adds a second, unsolicited answer, and a HEAD of /head-with-body gets a body.
func answerNaming(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	const stolen = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nfor mallory!!!"
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body := "for " + r.Header.Get("X-Auth-Subject")
		switch r.URL.Path {
		case "/double":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s%s", len(body), body, stolen)
		case "/head-with-body":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(stolen), stolen)
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}
}
