package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// testBackchannel: on the Cluster, a logout token posted to instance 1 ends exactly the
// sessions of its sid (index set in one slot, sessions in others), instance 0 refuses them at
// once, and the replayed token is refused (its jti lock lives in the Cluster too).
func testBackchannel(t *testing.T, addrs []string) {
	op := fixture.StartCraftedOP(t)
	d := deploy(t, deployOptions{n: 2, client: clusterClients(addrs), issuer: op.Issuer,
		clientSecret: "crafted-op-accepts-any-secret"})
	loginAs := func(sid string) (*http.Client, *session.Record) {
		op.TokenFunc = func(url.Values) (map[string]any, string) {
			cl := op.DefaultClaims()
			cl["sub"], cl["sid"] = "user-a", sid
			return cl, "RS256"
		}
		client, rec := d.CraftedLogin(t)
		if rec.IdPSessionID != sid {
			t.Fatalf("session recorded sid %q, want %q", rec.IdPSessionID, sid)
		}
		return client, rec
	}
	c1, s1 := loginAs("sid-1")
	_, s1b := loginAs("sid-1")
	c2, s2 := loginAs("sid-2")
	for _, c := range []*http.Client{c1, c2} { // cached on instance 0
		if resp, _ := fixture.Do(t, c, http.MethodGet, d.Instances[0].URL+"/x", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("before logout: %d", resp.StatusCode)
		}
	}

	token := op.Sign(logoutClaims(op.Issuer, "sid-1"), "RS256")
	form := url.Values{"logout_token": {token}}
	if status := postLogout(t, d.Instances[1].URL, form); status != http.StatusOK {
		t.Fatalf("back-channel logout: %d", status)
	}
	if resp, _ := fixture.Do(t, c1, http.MethodGet, d.Instances[0].URL+"/x", map[string]string{"Accept": "application/json"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("logged-out session on instance 0: %d, want 401", resp.StatusCode)
	}
	if resp, _ := fixture.Do(t, c2, http.MethodGet, d.Instances[0].URL+"/x", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("session of another sid on instance 0: %d, want 200", resp.StatusCode)
	}
	for _, tc := range []struct {
		rec   *session.Record
		alive bool
	}{{rec: s1, alive: false}, {rec: s1b, alive: false}, {rec: s2, alive: true}} {
		if got := d.Alive(t, tc.rec.Handle); got != tc.alive {
			t.Errorf("session of sid %s alive = %v, want %v", tc.rec.IdPSessionID, got, tc.alive)
		}
	}
	if status := postLogout(t, d.Instances[0].URL, form); status != http.StatusBadRequest {
		t.Errorf("replayed logout token: %d, want 400", status)
	}
}

// logoutClaims is a valid logout token claim set for the IdP session sid.
func logoutClaims(issuer, sid string) map[string]any {
	now := time.Now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	return map[string]any{
		"iss": issuer, "aud": "authgate", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": hex.EncodeToString(jti), "sid": sid,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
}

// postLogout posts a back-channel logout form as an IdP does and returns the status.
func postLogout(t *testing.T, base string, form url.Values) int {
	t.Helper()
	resp, err := http.Post(base+"/.auth/backchannel-logout", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
