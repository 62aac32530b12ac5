package scale

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims is a valid logout token claim set naming sid and/or sub (empty = absent).
func logoutClaims(op *fixture.CraftedOP, sub, sid string) map[string]any {
	now := time.Now()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	c := map[string]any{
		"iss": op.Issuer, "aud": "authgate", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": hex.EncodeToString(b), "events": map[string]any{logoutEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// signTyped signs claims with the OP's key and a JWS header typ of our choice.
func signTyped(t *testing.T, op *fixture.CraftedOP, claims map[string]any, typ string) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: op.Key, KeyID: op.KeyID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postLogout sends a back-channel logout request as an IdP does.
func postLogout(t *testing.T, base string, form url.Values, contentType string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/.auth/backchannel-logout", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const formType = "application/x-www-form-urlencoded"

// TestBackchannelLogout: the OP's logout tokens end sessions on every instance (sid: that IdP
// session; sub only: every session of the user); every invalid token is refused with 400 and
// ends nothing.
func TestBackchannelLogout(t *testing.T) {
	op := fixture.StartCraftedOP(t)
	c := startCluster(t, clusterOptions{n: 2, issuer: op.Issuer, clientSecret: "crafted-op-accepts-any-secret"})
	loginAs := func(sub, sid string) *session.Record {
		op.TokenFunc = func(url.Values) (map[string]any, string) {
			cl := op.DefaultClaims()
			cl["sub"], cl["sid"] = sub, sid
			return cl, "RS256"
		}
		_, rec := c.CraftedLogin(t)
		if rec.Subject != sub || rec.IdPSessionID != sid {
			t.Fatalf("session of %s/%s recorded %s/%s", sub, sid, rec.Subject, rec.IdPSessionID)
		}
		return rec
	}
	a1, a2, b1 := loginAs("user-a", "sid-a1"), loginAs("user-a", "sid-a2"), loginAs("user-b", "sid-b1")
	all := []*session.Record{a1, a2, b1}
	expectAlive := func(t *testing.T, want ...*session.Record) {
		t.Helper()
		for _, rec := range all {
			wantAlive := false
			for _, w := range want {
				wantAlive = wantAlive || w == rec
			}
			if got := c.Alive(t, rec.Handle); got != wantAlive {
				t.Errorf("session %s/%s alive = %v, want %v", rec.Subject, rec.IdPSessionID, got, wantAlive)
			}
		}
	}
	valid := func() map[string]any { return logoutClaims(op, "", "sid-a1") }
	with := func(mutate func(map[string]any)) map[string]any {
		cl := valid()
		mutate(cl)
		return cl
	}
	replayed := op.Sign(valid(), "RS256")

	bad := []struct {
		name  string
		token string
		form  url.Values // instead of logout_token=token
		ctype string
	}{
		{name: "signed by a key not in the JWKS", token: op.Sign(valid(), "RS256-other")},
		{name: "alg none", token: op.Sign(valid(), "none")},
		{name: "HS256 keyed with the public key", token: op.Sign(valid(), "HS256")},
		{name: "payload modified after signing", token: tamper(t, op.Sign(valid(), "RS256"))},
		{name: "wrong audience", token: op.Sign(with(func(c map[string]any) { c["aud"] = "other-client" }), "RS256")},
		{name: "wrong issuer", token: op.Sign(with(func(c map[string]any) { c["iss"] = "https://evil.example" }), "RS256")},
		{name: "expired", token: op.Sign(with(func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() }), "RS256")},
		{name: "exp missing", token: op.Sign(with(func(c map[string]any) { delete(c, "exp") }), "RS256")},
		{name: "iat in one hour", token: op.Sign(with(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), "RS256")},
		{name: "iat missing", token: op.Sign(with(func(c map[string]any) { delete(c, "iat") }), "RS256")},
		{name: "with a nonce", token: op.Sign(with(func(c map[string]any) { c["nonce"] = "n" }), "RS256")},
		{name: "events missing", token: op.Sign(with(func(c map[string]any) { delete(c, "events") }), "RS256")},
		{name: "events as an array", token: op.Sign(with(func(c map[string]any) { c["events"] = []string{logoutEvent} }), "RS256")},
		{name: "event member not an object", token: op.Sign(with(func(c map[string]any) { c["events"] = map[string]any{logoutEvent: "x"} }), "RS256")},
		{name: "another event", token: op.Sign(with(func(c map[string]any) { c["events"] = map[string]any{logoutEvent + "-x": map[string]any{}} }), "RS256")},
		{name: "neither sid nor sub", token: op.Sign(with(func(c map[string]any) { delete(c, "sid") }), "RS256")},
		{name: "jti missing", token: op.Sign(with(func(c map[string]any) { delete(c, "jti") }), "RS256")},
		{name: "typ at+jwt", token: signTyped(t, op, valid(), "at+jwt")},
		{name: "an ID token", token: op.Sign(op.DefaultClaims(), "RS256")},
		{name: "not a JWT", token: "logout"},
		{name: "no logout_token", form: url.Values{"other": {"x"}}},
		{name: "two logout_token", form: url.Values{"logout_token": {replayed, replayed}}},
		{name: "JSON body", token: replayed, ctype: "application/json"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			form, ctype := tt.form, tt.ctype
			if form == nil {
				form = url.Values{"logout_token": {tt.token}}
			}
			if ctype == "" {
				ctype = formType
			}
			resp, body := postLogout(t, c.Instances[1].URL, form, ctype)
			if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(body) != `{"error":"invalid_request"}` {
				t.Errorf("status %d body %q, want 400 {\"error\":\"invalid_request\"}", resp.StatusCode, body)
			}
			expectAlive(t, a1, a2, b1)
		})
	}

	t.Run("sid ends that IdP session on every instance", func(t *testing.T) {
		resp, body := postLogout(t, c.Instances[1].URL, url.Values{"logout_token": {replayed}}, formType)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d Cache-Control %q (%s)", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
		expectAlive(t, a2, b1)
	})
	t.Run("replayed jti", func(t *testing.T) {
		b2 := loginAs("user-b", "sid-a1") // a new session the replay would end
		all = append(all, b2)
		if resp, _ := postLogout(t, c.Instances[0].URL, url.Values{"logout_token": {replayed}}, formType); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replay: %d, want 400", resp.StatusCode)
		}
		expectAlive(t, a2, b1, b2)
	})
	t.Run("sub only ends every session of the user", func(t *testing.T) {
		tok := signTyped(t, op, logoutClaims(op, "user-a", ""), "logout+jwt")
		if resp, body := postLogout(t, c.Instances[0].URL, url.Values{"logout_token": {tok}}, formType); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s)", resp.StatusCode, body)
		}
		expectAlive(t, b1, all[3])
	})
	t.Run("a session that is already gone", func(t *testing.T) {
		tok := op.Sign(logoutClaims(op, "", "sid-unknown"), "RS256")
		if resp, _ := postLogout(t, c.Instances[1].URL, url.Values{"logout_token": {tok}}, formType); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
		expectAlive(t, b1, all[3])
	})
}

func TestBackchannelLogoutRequestShape(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true})
	if resp, _ := fixture.Do(t, http.DefaultClient, http.MethodGet, g.URL+"/.auth/backchannel-logout", nil); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Over the 64 KiB limit, but small enough that the client finishes writing before the
	// gateway answers and closes (a 1 MiB body races the close and sees a reset).
	huge := url.Values{"logout_token": {strings.Repeat("a", 128<<10)}}
	if resp, _ := postLogout(t, g.URL, huge, formType); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("128 KiB body: %d, want 413", resp.StatusCode)
	}
}

// tamper changes one claim of a signed token without re-signing it.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	c["sid"] = "sid-a2"
	b, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}
