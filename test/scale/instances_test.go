package scale

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// TestSessionWorksOnEveryInstance: a session made on one instance is served by all of them.
func TestSessionWorksOnEveryInstance(t *testing.T) {
	c := startCluster(t, clusterOptions{n: 3})
	client, rec := c.Login(t, "alice")
	for i, g := range c.Instances {
		resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/dashboard", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: %d %s", i, resp.StatusCode, body)
		}
		got, _ := c.Echo.Last()
		if v := got.Header.Get("X-Auth-User-Id"); v != rec.UserID {
			t.Errorf("instance %d sent X-Auth-User-Id %q, want %q", i, v, rec.UserID)
		}
		if resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/.auth/me", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("instance %d /.auth/me: %d %s", i, resp.StatusCode, body)
		}
	}
}

// TestRevocationReachesEveryInstanceWithinASecond: however a session ends on one instance, the
// next request on every other instance is unauthenticated, well within a second.
func TestRevocationReachesEveryInstanceWithinASecond(t *testing.T) {
	c := startCluster(t, clusterOptions{n: 3})
	tests := []struct {
		name   string
		revoke func(t *testing.T, client *http.Client, rec *session.Record)
	}{
		{name: "logout on instance 0", revoke: func(t *testing.T, client *http.Client, _ *session.Record) {
			resp, body := fixture.Do(t, client, http.MethodPost, c.Instances[0].URL+"/.auth/logout", map[string]string{"Origin": c.Instances[0].URL})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d %s", resp.StatusCode, body)
			}
		}},
		{name: "ops revoke through instance 1's store", revoke: func(t *testing.T, _ *http.Client, rec *session.Record) {
			if err := c.Instances[1].Sessions.Revoke(context.Background(), rec.Handle); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "all sessions of the user through instance 2's store", revoke: func(t *testing.T, _ *http.Client, rec *session.Record) {
			if n, err := c.Instances[2].Sessions.RevokeSubject(context.Background(), rec.Issuer, rec.Subject); err != nil || n == 0 {
				t.Fatalf("RevokeSubject = %d, %v", n, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, rec := c.Login(t, "bob")
			for i, g := range c.Instances { // every instance serves it first
				if resp, _ := fixture.Do(t, client, http.MethodGet, g.URL+"/x", nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("instance %d before revocation: %d", i, resp.StatusCode)
				}
			}
			replay := c.ReplayClient(t, client)
			tt.revoke(t, client, rec)
			// The SPEC bound is one second: the pub/sub invalidation usually lands in
			// milliseconds, but a request may reach an instance just before it has.
			revoked := time.Now()
			for i, g := range c.Instances {
				for {
					resp, body := fixture.Do(t, replay, http.MethodGet, g.URL+"/x", map[string]string{"Accept": "application/json"})
					if resp.StatusCode == http.StatusUnauthorized {
						break
					}
					if time.Since(revoked) > time.Second {
						t.Errorf("instance %d still answers %d a second after revocation: %s", i, resp.StatusCode, body)
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}
