package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// TestGatewayOnRedisCluster runs two gateway instances on a real Redis Cluster, each with its
// own ClusterClient: login, identity on every instance, identity JWTs signed with keys shared
// through the Cluster, one token refresh for concurrent requests, revocation by every path
// refused on the other instance within a second, and the ops listings.
func TestGatewayOnRedisCluster(t *testing.T) {
	addrs := startCluster(t)
	d := deploy(t, deployOptions{n: 2, client: clusterClients(addrs), refreshSkew: 100 * time.Millisecond})

	t.Run("login and identity on every instance", func(t *testing.T) {
		client, rec := d.Login(t, "alice")
		if rec.UserID == "" || rec.AccessToken == "" || rec.RefreshToken == "" || rec.IdPSessionID == "" {
			t.Fatalf("session record incomplete: user %q, tokens %t/%t, sid %t", rec.UserID,
				rec.AccessToken != "", rec.RefreshToken != "", rec.IdPSessionID != "")
		}
		for i, g := range d.Instances {
			resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/dashboard", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("instance %d: %d %s", i, resp.StatusCode, body)
			}
			got, _ := d.Echo.Last()
			if v := got.Header.Get("X-Auth-User-Id"); v != rec.UserID {
				t.Errorf("instance %d sent X-Auth-User-Id %q, want %q", i, v, rec.UserID)
			}
			if v := got.Header.Get("X-Auth-Email"); v == "" {
				t.Errorf("instance %d sent no X-Auth-Email", i)
			}
		}
	})

	t.Run("identity JWT keys shared through the cluster", func(t *testing.T) {
		client, rec := d.Login(t, "alice")
		var kids []string
		for i, g := range d.Instances {
			if resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/jwt/me", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("instance %d: %d %s", i, resp.StatusCode, body)
			}
			got, _ := d.Echo.Last()
			other := d.Instances[1-i] // the other instance publishes the key that signed it
			sub, kid := verifyIdentity(t, other.URL+"/.auth/jwks.json", got.Header.Get("X-Auth-Identity"), d.Instances[0].URL)
			if sub != rec.UserID {
				t.Errorf("instance %d: X-Auth-Identity sub %q, want %q", i, sub, rec.UserID)
			}
			kids = append(kids, kid)
		}
		if kids[0] != kids[1] {
			t.Errorf("instances signed with different keys %q and %q", kids[0], kids[1])
		}
	})

	t.Run("one token refresh for concurrent requests on both instances", func(t *testing.T) {
		testOneRefresh(t, d)
	})

	t.Run("revocation refused on the other instance within a second", func(t *testing.T) {
		testRevocations(t, d)
	})

	t.Run("back-channel logout", func(t *testing.T) {
		testBackchannel(t, addrs)
	})

	t.Run("ops listings", func(t *testing.T) {
		_, a1 := d.Login(t, "bob")
		_, a2 := d.Login(t, "bob")
		list, err := d.Instances[1].Sessions.ListSubject(context.Background(), a1.Issuer, a1.Subject)
		if err != nil {
			t.Fatal(err)
		}
		got := handlesOf(list)
		if !slices.Contains(got, a1.Handle) || !slices.Contains(got, a2.Handle) {
			t.Errorf("ListSubject = %v, want both %s and %s", got, a1.Handle, a2.Handle)
		}
		for _, rec := range list {
			if rec.AccessToken != "" || rec.RefreshToken != "" || rec.IDToken != "" {
				t.Errorf("ListSubject returned tokens of %s", rec.Handle)
			}
		}
		all, err := d.Instances[1].Sessions.List(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if h := handlesOf(all); !slices.Contains(h, a1.Handle) || !slices.Contains(h, a2.Handle) {
			t.Errorf("List (%d sessions) misses %s or %s", len(h), a1.Handle, a2.Handle)
		}
	})
}

// startCluster is fixture.StartRedisCluster, logged.
func startCluster(t *testing.T) []string {
	t.Helper()
	start := time.Now()
	addrs := fixture.StartRedisCluster(t)
	t.Logf("redis cluster %v up in %v", addrs, time.Since(start).Round(time.Millisecond))
	return addrs
}

func handlesOf(recs []*session.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Handle
	}
	return out
}

// verifyIdentity checks token as an upstream does (ES256, kid from the JWKS at jwksURL, iss,
// exp) and returns its subject and key id.
func verifyIdentity(t *testing.T, jwksURL, token, issuer string) (sub, kid string) {
	t.Helper()
	resp, body := fixture.Do(t, http.DefaultClient, http.MethodGet, jwksURL, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("X-Auth-Identity: %v", err)
	}
	kid = tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", kid)
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("X-Auth-Identity signature: %v", err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: time.Now()}, 0); err != nil {
		t.Fatalf("X-Auth-Identity claims: %v", err)
	}
	return claims.Subject, kid
}

// testOneRefresh: 20 requests of a session whose access token has expired, spread over both
// instances, cause exactly one refresh at the IdP (the lock and the Update go through the
// Cluster), and all of them reach the upstream with the new token.
func testOneRefresh(t *testing.T, d *deployment) {
	client, rec := d.Login(t, "alice")
	before := d.OP.Provider.RefreshCount()
	// The new token's expiry (real time + expires_in, rounded down to the second) must fall
	// after the frozen instant, so let more than a second pass first.
	time.Sleep(1100 * time.Millisecond)
	d.Clock.Freeze(rec.TokenExpiry)
	defer d.Clock.Freeze(time.Time{})

	const n = 20
	status := d.GetAll(t, client, "/token/", n)
	for i, s := range status {
		if s != http.StatusOK {
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if got := d.OP.Provider.RefreshCount() - before; got != 1 {
		t.Errorf("refreshes at the IdP = %d, want exactly 1", got)
	}
	cur, err := d.Instances[1].Sessions.Lookup(context.Background(), rec.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if cur.AccessToken == rec.AccessToken || cur.RefreshToken == rec.RefreshToken || !cur.TokenExpiry.After(rec.TokenExpiry) {
		t.Fatal("session tokens were not replaced")
	}
	seen := 0
	for _, got := range d.Echo.All() {
		if strings.HasPrefix(got.Path, "/token/") && got.Header.Get("Authorization") == "Bearer "+cur.AccessToken {
			seen++
		}
	}
	if seen != n {
		t.Errorf("upstream saw %d requests with the new access token, want %d", seen, n)
	}
}

// testRevocations: however a session ends on instance 0 or through instance 1's store, the
// next request on every instance (both had it cached) is unauthenticated, within a second.
func testRevocations(t *testing.T, d *deployment) {
	ctx := context.Background()
	other := d.Instances[1].Sessions
	count := func(n int, err error) error {
		if err == nil && n != 1 {
			err = fmt.Errorf("revoked %d sessions, want 1", n)
		}
		return err
	}
	tests := []struct {
		name   string
		revoke func(client *http.Client, rec *session.Record) error
	}{
		{name: "logout on instance 0", revoke: func(client *http.Client, _ *session.Record) error {
			resp, body := fixture.Do(t, client, http.MethodPost, d.Instances[0].URL+"/.auth/logout", map[string]string{"Origin": d.Instances[0].URL})
			if resp.StatusCode != http.StatusSeeOther {
				return fmt.Errorf("logout: %d %s", resp.StatusCode, body)
			}
			return nil
		}},
		{name: "Revoke", revoke: func(_ *http.Client, rec *session.Record) error { return other.Revoke(ctx, rec.Handle) }},
		{name: "RevokeIdPSession (back-channel logout with sid)", revoke: func(_ *http.Client, rec *session.Record) error {
			return count(other.RevokeIdPSession(ctx, rec.Issuer, rec.IdPSessionID))
		}},
		{name: "RevokeSubject (back-channel logout with sub, a user's sessions)", revoke: func(_ *http.Client, rec *session.Record) error {
			n, err := other.RevokeSubject(ctx, rec.Issuer, rec.Subject)
			if err == nil && n < 1 {
				err = fmt.Errorf("RevokeSubject ended %d sessions", n)
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, rec := d.Login(t, "bob")
			for i, g := range d.Instances { // every instance serves (and caches) it first
				if resp, _ := fixture.Do(t, client, http.MethodGet, g.URL+"/x", nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("instance %d before revocation: %d", i, resp.StatusCode)
				}
			}
			replay := d.ReplayClient(t, client)
			if err := tt.revoke(client, rec); err != nil {
				t.Fatal(err)
			}
			d.expectRefused(t, replay, time.Now())
			if d.Alive(t, rec.Handle) {
				t.Error("the session record survived")
			}
			if list, err := other.ListSubject(ctx, rec.Issuer, rec.Subject); err != nil || slices.Contains(handlesOf(list), rec.Handle) {
				t.Errorf("ListSubject after revocation still names it (err %v)", err)
			}
		})
	}
}
