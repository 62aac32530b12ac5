package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// newClient returns a fresh go-redis client on the deployment under test; the caller closes it.
type newClient func() redis.UniversalClient

// deployment is a set of gateway instances sharing one Redis deployment and key prefix, one
// user database and one OP, as replicas behind a load balancer would (fixture.Deployment).
type deployment struct{ *fixture.Deployment }

type deployOptions struct {
	n            int
	client       newClient
	issuer       string // default: a fresh devidp OP
	clientSecret string
	refreshSkew  time.Duration
}

// newStore is a session store on a client of its own; both are closed at cleanup.
func newStore(t *testing.T, nc newClient, opts session.Options) (*session.Store, redis.UniversalClient) {
	t.Helper()
	client := nc()
	t.Cleanup(func() { _ = client.Close() })
	st, err := session.NewRedis(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // runs before the client's Close
	return st, client
}

// randomPrefix is a fresh key prefix, so deployments on one Redis never see each other's keys.
func randomPrefix(name string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "authgate-" + name + "-" + hex.EncodeToString(b) + ":"
}

// deploy starts o.n gateways on the Redis deployment of o.client (fixture.StartDeployment).
func deploy(t *testing.T, o deployOptions) *deployment {
	t.Helper()
	return &deployment{fixture.StartDeployment(t, fixture.DeploymentOptions{N: o.n, NewClient: o.client,
		Issuer: o.issuer, ClientSecret: o.clientSecret, RefreshSkew: o.refreshSkew})}
}

// clusterClients returns a newClient for the Cluster at addrs (timeouts as cmd/authgate).
func clusterClients(addrs []string) newClient {
	return func() redis.UniversalClient { return fixture.NewRedisClusterClient(addrs) }
}

// sentinelClients returns a newClient for the Sentinel set (timeouts as cmd/authgate).
func sentinelClients(sentinelAddr, master string) newClient {
	return func() redis.UniversalClient { return fixture.NewRedisSentinelClient(sentinelAddr, master) }
}

// revocationBound is how soon a revoked session must be refused on every instance (SPEC:
// "revocation on one takes effect on all within a second"). Invalidation by pub/sub usually
// takes a millisecond, but a request may reach an instance just before its subscriber
// goroutine has applied the message, so the check polls.
const revocationBound = time.Second

// expectRefused polls every instance with client until each answers 401, and fails the test
// for an instance that still serves the session revocationBound after revoked.
func (d *deployment) expectRefused(t *testing.T, client *http.Client, revoked time.Time) {
	t.Helper()
	for i, g := range d.Instances {
		for {
			resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/x", map[string]string{"Accept": "application/json"})
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
			if resp.StatusCode != http.StatusOK || time.Since(revoked) > revocationBound {
				t.Errorf("instance %d %v after revocation: %d %s, want 401", i, time.Since(revoked).Round(time.Millisecond), resp.StatusCode, body)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("revocation refused on every instance after %v", time.Since(revoked).Round(time.Millisecond))
}
