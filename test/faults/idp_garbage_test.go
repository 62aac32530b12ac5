package faults

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// junkMarker is in every junk answer; the gateway must never echo it.
const junkMarker = "JUNK-7f3a"

// junkOP is an OpenID Provider whose discovery and authorize endpoints work (unless told
// otherwise) and whose token endpoint answers whatever junk the test picks.
type junkOP struct {
	URL string

	mu        sync.Mutex
	token     func(w http.ResponseWriter) // the token endpoint's answer
	discovery bool                        // serve a valid discovery document
	tokens    int
}

func startJunkOP(t *testing.T) *junkOP {
	t.Helper()
	j := &junkOP{discovery: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", j.serveDiscovery)
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		back.RawQuery = url.Values{"code": {"junk-code"}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		answer := j.token
		j.tokens++
		j.mu.Unlock()
		answer(w)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"keys":"%s"}`, junkMarker)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	j.URL = srv.URL
	return j
}

func (j *junkOP) set(token func(w http.ResponseWriter), discovery bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.token, j.discovery = token, discovery
}

func (j *junkOP) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	j.mu.Lock()
	ok := j.discovery
	j.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer": ["%s"], "authorization_endpoint": 42`, junkMarker)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": j.URL, "authorization_endpoint": j.URL + "/authorize", "token_endpoint": j.URL + "/token",
		"jwks_uri": j.URL + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

// answer returns a token endpoint answer with the given status, content type and body.
func answer(status int, ctype, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// wellFormedJWT is a JWT with plausible claims for issuer and a junk signature: it gets as far
// as the signature check, which needs the (junk) key set.
func wellFormedJWT(issuer string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "aud": "authgate", "sub": "junk",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "nonce": junkMarker})
	return enc([]byte(`{"alg":"RS256","kid":"k1","typ":"JWT"}`)) + "." + enc(claims) + "." + enc([]byte(junkMarker))
}

// TestIdPAnsweringGarbage: whatever the token endpoint answers, the callback gets a fixed
// error page with a fitting status (502 for a broken IdP, 401 for an answer that is well
// formed but refused), no session, nothing of the junk echoed, and no panic; the gateway
// goes on serving.
func TestIdPAnsweringGarbage(t *testing.T) {
	j := startJunkOP(t)
	rg := startRig(t, rigOptions{issuer: j.URL, secret: "junk-secret"})
	tokenJSON := func(extra string) string {
		return `{"access_token":"` + junkMarker + `","token_type":"Bearer","expires_in":300` + extra + `}`
	}
	tests := []struct {
		name   string
		answer func(http.ResponseWriter)
		want   int
	}{
		{name: "truncated JSON", answer: answer(200, "application/json", `{"access_token":"`+junkMarker), want: http.StatusBadGateway},
		{name: "JSON of the wrong types", answer: answer(200, "application/json", `{"access_token":5,"token_type":["`+junkMarker+`"],"expires_in":"soon"}`), want: http.StatusBadGateway},
		{name: "no id_token", answer: answer(200, "application/json", tokenJSON("")), want: http.StatusBadGateway},
		{name: "id_token not a JWT", answer: answer(200, "application/json", tokenJSON(`,"id_token":"`+junkMarker+`"`)), want: http.StatusUnauthorized},
		{name: "id_token of the wrong type", answer: answer(200, "application/json", tokenJSON(`,"id_token":{"a":1}`)), want: http.StatusBadGateway},
		{name: "key set is junk", answer: answer(200, "application/json", tokenJSON(`,"id_token":"`+wellFormedJWT(j.URL)+`"`)), want: http.StatusBadGateway},
		{name: "HTML page with 200", answer: answer(200, "text/html", "<html><body>"+junkMarker+"</body></html>"), want: http.StatusBadGateway},
		{name: "HTML page with 500", answer: answer(500, "text/html", "<html>"+junkMarker+"</html>"), want: http.StatusBadGateway},
		{name: "empty 200", answer: answer(200, "application/json", ""), want: http.StatusBadGateway},
		{name: "binary", answer: answer(200, "application/octet-stream", "\x00\xff\xfe"+junkMarker+"\x01"), want: http.StatusBadGateway},
		{name: "5 MiB of brackets", answer: answer(200, "application/json", strings.Repeat("[", 5*mib)), want: http.StatusBadGateway},
		{name: "OAuth error", answer: answer(400, "application/json", `{"error":"invalid_grant","error_description":"`+junkMarker+`"}`), want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j.set(tt.answer, true)
			c := rg.Client()
			cb := followTo(t, c, rg.URL+"/.auth/login?return_to=%2F", rg.URL+"/.auth/callback")
			st, body, _ := getPage(t, c, cb)
			if st != tt.want {
				t.Errorf("callback: %d, want %d (%q)", st, tt.want, body)
			}
			if strings.Contains(body, junkMarker) {
				t.Errorf("the error page echoes the IdP's junk: %q", body)
			}
			if u, _ := url.Parse(rg.URL); hasSession(c, u) {
				t.Error("a failed login left a session cookie")
			}
		})
	}
	if st, _, _ := getPage(t, rg.Client(), rg.URL+"/.auth/healthz"); st != http.StatusOK {
		t.Errorf("healthz after the junk: %d", st)
	}
	if n := sessionCount(t, rg); n != 0 {
		t.Errorf("%d sessions after logins that all failed", n)
	}
}

// TestIdPGarbageDiscovery: a discovery document that is junk makes the login answer 503 (the
// IdP is not usable) until it is fixed, then the login starts without a restart.
func TestIdPGarbageDiscovery(t *testing.T) {
	j := startJunkOP(t)
	j.set(answer(500, "text/plain", junkMarker), false)
	rg := startRig(t, rigOptions{issuer: j.URL, secret: "junk-secret"})
	st, body, _ := getPage(t, rg.Client(), rg.URL+"/.auth/login")
	if st != http.StatusServiceUnavailable || strings.Contains(body, junkMarker) {
		t.Errorf("login with a junk discovery document: %d %q", st, body)
	}
	j.set(answer(500, "text/plain", junkMarker), true)
	took, ok := waitFor(10*time.Second, func() bool {
		st, _, _ := getPage(t, rg.Client(), rg.URL+"/.auth/login")
		return st == http.StatusFound
	})
	if !ok {
		t.Fatal("login still failing 10s after discovery was fixed")
	}
	t.Logf("login started %v after the discovery document was fixed", took)
}

// followTo follows redirects from start with c until a Location starts with prefix, and
// returns that location.
func followTo(t *testing.T, c *http.Client, start, prefix string) string {
	t.Helper()
	u := start
	for i := 0; i < 5; i++ {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if resp.StatusCode/100 != 3 || err != nil {
			t.Fatalf("GET %s: %d, no redirect", u, resp.StatusCode)
		}
		if strings.HasPrefix(next.String(), prefix) {
			return next.String()
		}
		u = next.String()
	}
	t.Fatalf("no redirect to %s", prefix)
	return ""
}

// hasSession reports whether c holds a non-empty session cookie for u.
func hasSession(c *http.Client, u *url.URL) bool {
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "authgate" && ck.Value != "" {
			return true
		}
	}
	return false
}
