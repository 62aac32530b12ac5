package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/assertion"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// clock is the gateways' injected clock: real time until a test freezes it.
type clock = fixture.Clock

// newClient returns a fresh go-redis client on the deployment under test; the caller closes it.
type newClient func() redis.UniversalClient

// instance is one gateway with the session store it really uses (not Gateway.Sessions, which
// is the unused memory store StartGateway made).
type instance struct {
	*fixture.Gateway
	sessions *session.Store
}

// deployment is a set of gateway instances sharing one Redis deployment and key prefix, one
// user database and one OP, as replicas behind a load balancer would.
type deployment struct {
	inst   []*instance
	clock  *clock
	echo   *fixture.Echo
	op     *fixture.OP // nil with deployOptions.issuer
	prefix string
}

type deployOptions struct {
	n            int
	client       newClient
	issuer       string // default: a fresh devidp OP
	clientSecret string
	refreshSkew  time.Duration
}

// testRoutes: /token/ passes the access token, /jwt/ sends X-Auth-Identity, / is plain.
func testRoutes(target *url.URL) []gateway.Route {
	return []gateway.Route{
		{Route: upstream.Route{Name: "token-api", PathPrefix: "/token/", Target: target}, PassAccessToken: true},
		{Route: upstream.Route{Name: "jwt-api", PathPrefix: "/jwt/", Target: target}, IdentityJWT: true},
		{Route: upstream.Route{Name: "app", PathPrefix: "/", Target: target}},
	}
}

// storeOptions are the session options of every store of a deployment.
func storeOptions(secrets [][]byte, prefix string) session.Options {
	return session.Options{CookieName: fixture.CookieName, SameSite: http.SameSiteLaxMode,
		Secrets: secrets, IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, KeyPrefix: prefix}
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

// deploy starts o.n gateways. Every instance gets its own Redis client, session store and
// assertion signer, so nothing but the user database is shared in process.
func deploy(t *testing.T, o deployOptions) *deployment {
	t.Helper()
	d := &deployment{clock: &clock{}, echo: fixture.StartEcho(t), prefix: randomPrefix("gw")}
	if o.issuer == "" {
		d.op = fixture.StartOP(t)
		o.issuer, o.clientSecret = d.op.Issuer, d.op.ClientSecret
	}
	st, err := users.Open(context.Background(), users.Options{URL: "sqlite:" + t.TempDir() + "/users.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{fixture.Secret()}
	routes := testRoutes(mustURL(t, d.echo.URL))
	for i := 0; i < o.n; i++ {
		inst := &instance{}
		var client redis.UniversalClient
		inst.sessions, client = newStore(t, o.client, storeOptions(secrets, d.prefix))
		signer, err := assertion.NewRedis(client, assertion.Options{Secrets: secrets, KeyPrefix: d.prefix})
		if err != nil {
			t.Fatal(err)
		}
		var publicURL string
		if i > 0 {
			publicURL = d.inst[0].URL // one public origin, as behind a load balancer
		}
		inst.Gateway = fixture.StartGateway(t, fixture.GatewayOptions{
			Issuer: o.issuer, ClientSecret: o.clientSecret, Secrets: secrets, Routes: routes,
			MemorySessions: true, // replaced below: the gateway uses inst.sessions
			Mutate: func(opts *gateway.Options) {
				opts.Sessions, opts.Users, opts.Assertions = inst.sessions, st, signer
				opts.Now, opts.RefreshSkew = d.clock.Now, o.refreshSkew
				if publicURL != "" {
					opts.PublicURL = publicURL
				}
			},
		})
		d.inst = append(d.inst, inst)
	}
	return d
}

// handles is the set of session handles List returns on instance 0.
func (d *deployment) handles(t *testing.T) map[string]bool {
	t.Helper()
	list, err := d.inst[0].sessions.List(context.Background(), session.MaxListLimit)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := make(map[string]bool, len(list))
	for _, rec := range list {
		out[rec.Handle] = true
	}
	return out
}

// newSession runs login (which must make exactly one session) and returns that session's
// record, tokens included, found by listing the store before and after.
func (d *deployment) newSession(t *testing.T, login func()) *session.Record {
	t.Helper()
	before := d.handles(t)
	login()
	var made []string
	for h := range d.handles(t) {
		if !before[h] {
			made = append(made, h)
		}
	}
	if len(made) != 1 {
		t.Fatalf("login made %d sessions, want 1", len(made))
	}
	rec, err := d.inst[0].sessions.Lookup(context.Background(), made[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// login logs a fresh client in as user (devidp, password = user name) through instance 0.
func (d *deployment) login(t *testing.T, user string) (*http.Client, *session.Record) {
	t.Helper()
	g := d.inst[0]
	client := g.Client()
	rec := d.newSession(t, func() {
		resp := g.Login(t, client, "/", user, user)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login as %s: status %d", user, resp.StatusCode)
		}
	})
	return client, rec
}

// alive reports whether the session of handle still exists.
func (d *deployment) alive(t *testing.T, handle string) bool {
	t.Helper()
	_, err := d.inst[0].sessions.Lookup(context.Background(), handle)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// replayClient is a new client holding a copy of client's cookies for the deployment, so a
// logout's Set-Cookie does not hide the old session from the requests that follow.
func (d *deployment) replayClient(t *testing.T, client *http.Client) *http.Client {
	t.Helper()
	replay := d.inst[0].Client()
	u := mustURL(t, d.inst[0].URL)
	replay.Jar.SetCookies(u, client.Jar.Cookies(u))
	return replay
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, c *http.Client, method, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
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
	for i, g := range d.inst {
		for {
			resp, body := do(t, client, http.MethodGet, g.URL+"/x", map[string]string{"Accept": "application/json"})
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
