// Package security is authgate's attack suite: each test drives the real, fully wired gateway
// (fixture.StartGateway: Redis sessions, a SQLite user store, devidp or a crafted OP, and an
// echo upstream) with a hostile input from /work/shared/security-checklist.md and asserts both
// the answer the client gets and what the upstream did or did not receive. Raw requests are
// written on a socket where Go's client would normalise the input.
package security

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// rawReq is one HTTP/1.1 request written byte for byte on a fresh connection.
type rawReq struct {
	method  string   // sent as is ("get" stays lower-case); default GET
	target  string   // request-target as is (origin-form, absolute-form, anything)
	headers []string // "Name: value" lines, verbatim; Host and Connection: close are added unless given
	body    string
}

// sendRaw writes r to the gateway at gwURL and returns the parsed answer and its body.
func sendRaw(t *testing.T, gwURL string, r rawReq) (*http.Response, string) {
	t.Helper()
	addr := strings.TrimPrefix(gwURL, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, r.target)
	if !hasHeaderLine(r.headers, "host") {
		fmt.Fprintf(&b, "Host: %s\r\n", addr)
	}
	if !hasHeaderLine(r.headers, "connection") {
		b.WriteString("Connection: close\r\n")
	}
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	if r.body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("\r\n" + r.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		t.Fatalf("read answer to %s %s: %v", method, r.target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func hasHeaderLine(lines []string, name string) bool {
	for _, l := range lines {
		if n, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return true
		}
	}
	return false
}

// loginAs logs a fresh client in through devidp and returns it with its "Cookie:" line for raw
// requests.
func loginAs(t *testing.T, g *fixture.Gateway, user string) (*http.Client, string) {
	t.Helper()
	c := g.Client()
	resp := g.Login(t, c, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: status %d", user, resp.StatusCode)
	}
	v := jarSession(t, g, c)
	if v == "" {
		t.Fatalf("login as %s: no session cookie in the jar", user)
	}
	return c, "Cookie: " + fixture.CookieName + "=" + v
}

// jarSession returns the session cookie value the client's jar holds for the gateway ("" if none).
func jarSession(t *testing.T, g *fixture.Gateway, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(g.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == fixture.CookieName {
			return ck.Value
		}
	}
	return ""
}

// setSession returns the session cookie value an answer sets ("" when it sets none or clears it).
func setSession(resp *http.Response) string {
	for _, ck := range resp.Cookies() {
		if ck.Name == fixture.CookieName && ck.Value != "" && ck.MaxAge >= 0 {
			return ck.Value
		}
	}
	return ""
}

// liveSessions counts the live sessions in the gateway's store.
func liveSessions(t *testing.T, g *fixture.Gateway) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := g.Sessions.List(ctx, 1000)
	if err != nil {
		t.Fatalf("list sessions: %v", err)
	}
	return len(list)
}

// userRows counts the rows of the user store.
func userRows(t *testing.T, g *fixture.Gateway) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := g.Users.List(ctx, 1000)
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	return len(list)
}

// userID returns the database id of the user with email.
func userID(t *testing.T, g *fixture.Gateway, email string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := g.Users.FindByEmail(ctx, email, 10)
	if err != nil || len(u) != 1 {
		t.Fatalf("user %s: %v %v", email, u, err)
	}
	return u[0].ID
}

// get sends a GET with the client (its jar, no redirects followed) and returns answer and body.
func get(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return do(t, c, http.MethodGet, u, hdr...)
}

// do sends method to u with "Name: value" headers using c.
func do(t *testing.T, c *http.Client, method, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// startLogin GETs /.auth/login?<rawQuery> with c and returns the authorize URL it redirects to.
func startLogin(t *testing.T, g *fixture.Gateway, c *http.Client, rawQuery string) *url.URL {
	t.Helper()
	u := g.URL + "/.auth/login"
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	resp, body := get(t, c, u)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/.auth/login: status %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") == "" {
		t.Fatalf("/.auth/login redirect %q: %v", resp.Header.Get("Location"), err)
	}
	return loc
}

var authRequestIDRe = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// idpLogin takes the authorize URL of a flow, logs in at devidp as user/pass and returns the
// gateway callback URL devidp redirects to, WITHOUT requesting it.
func idpLogin(t *testing.T, g *fixture.Gateway, c *http.Client, authorize *url.URL, user, pass string) string {
	t.Helper()
	next := authorize.String()
	for range 10 {
		resp, body := get(t, c, next)
		if resp.StatusCode == http.StatusOK {
			m := authRequestIDRe.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("devidp page without a login form: %s", body)
			}
			form := url.Values{"authRequestID": {m[1]}, "username": {user}, "password": {pass}}
			post, err := c.PostForm(resp.Request.URL.String(), form)
			if err != nil {
				t.Fatal(err)
			}
			post.Body.Close()
			resp = post
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			t.Fatalf("devidp: unexpected status %d", resp.StatusCode)
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(u.String(), g.URL+"/.auth/callback") {
			return u.String()
		}
		next = u.String()
	}
	t.Fatal("devidp: too many redirects")
	return ""
}

// underAdmin reports whether an upstream path is /admin or below it, in any case.
func underAdmin(p string) bool {
	l := strings.ToLower(p)
	return l == "/admin" || strings.HasPrefix(l, "/admin/")
}

// foldName is a header name lower-cased with '_' read as '-', the way WSGI/PHP upstreams fold it.
func foldName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}
