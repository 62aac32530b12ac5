package scale

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authgate/authgate/assertion"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// clock is the gateways' injected clock: real time until a test freezes it.
type clock = fixture.Clock

// instance is one gateway of a cluster with its own Redis clients.
type instance struct {
	*fixture.Gateway
	sessions *session.Store // the store this instance really uses (not Gateway.Sessions)
}

// cluster is a set of gateway instances sharing one Redis key prefix (sessions, locks, signing
// keys), one user database and one OP, as replicas behind a load balancer would.
type cluster struct {
	inst  []*instance
	clock *clock
	users *users.Store
	echo  *fixture.Echo
}

type clusterOptions struct {
	n            int
	issuer       string // default: a fresh devidp OP (see op)
	clientSecret string
	op           *fixture.OP
	refreshSkew  time.Duration
	targets      map[string]string // route name -> upstream URL; default the echo upstream
}

// scaleRoutes: /token/ passes the access token, /jwt/ sends X-Auth-Identity, / is plain.
func scaleRoutes() []gateway.Route {
	return []gateway.Route{
		{Route: upstream.Route{Name: "token-api", PathPrefix: "/token/"}, PassAccessToken: true},
		{Route: upstream.Route{Name: "jwt-api", PathPrefix: "/jwt/"}, IdentityJWT: true},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}
}

// startCluster starts o.n gateways that share everything shared in production. Every instance
// gets its own Redis clients, so nothing is shared in process except the user database.
func startCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	if o.issuer == "" {
		if o.op == nil {
			o.op = fixture.StartOP(t)
		}
		o.issuer, o.clientSecret = o.op.Issuer, o.op.ClientSecret
	}
	_, prefix := fixture.Redis(t)
	secrets := [][]byte{fixture.Secret()}
	c := &cluster{clock: &clock{}, echo: fixture.StartEcho(t)}
	var err error
	c.users, err = users.Open(context.Background(), users.Options{URL: "sqlite:" + t.TempDir() + "/users.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.users.Close() })
	if err := c.users.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	routes := scaleRoutes()
	target, _ := url.Parse(c.echo.URL)
	for i := range routes {
		routes[i].Target = target
		if u, ok := o.targets[routes[i].Name]; ok {
			routes[i].Target = mustURL(t, u)
		}
	}
	for i := 0; i < o.n; i++ {
		inst := &instance{}
		rdb, _ := fixture.Redis(t) // a client of its own; the keys go under the shared prefix
		inst.sessions, err = session.NewRedis(rdb, session.Options{CookieName: fixture.CookieName,
			SameSite: http.SameSiteLaxMode, Secrets: secrets, IdleTimeout: 30 * time.Minute,
			AbsoluteTimeout: 12 * time.Hour, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		signer, err := assertion.NewRedis(rdb, assertion.Options{Secrets: secrets, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		var publicURL string
		if i > 0 {
			publicURL = c.inst[0].URL // one public origin, as behind a load balancer
		}
		inst.Gateway = fixture.StartGateway(t, fixture.GatewayOptions{
			Issuer: o.issuer, ClientSecret: o.clientSecret, Secrets: secrets, Routes: routes,
			Mutate: func(opts *gateway.Options) {
				opts.Sessions, opts.Users, opts.Assertions = inst.sessions, c.users, signer
				opts.Now, opts.RefreshSkew = c.clock.Now, o.refreshSkew
				if publicURL != "" {
					opts.PublicURL = publicURL
				}
			},
		})
		c.inst = append(c.inst, inst)
	}
	return c
}

// login logs a fresh client in through instance 0 (devidp) and returns it and the session.
func (c *cluster) login(t *testing.T, user string) (*http.Client, *session.Record) {
	t.Helper()
	g := c.inst[0]
	client := g.Client()
	resp := g.Login(t, client, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: status %d", user, resp.StatusCode)
	}
	return client, c.newestSession(t)
}

// craftedLogin logs a fresh client in through instance 0 against a CraftedOP, whose authorize
// endpoint redirects straight back with a code.
func (c *cluster) craftedLogin(t *testing.T) (*http.Client, *session.Record) {
	t.Helper()
	g := c.inst[0]
	client := g.Client()
	u := g.URL + "/.auth/login?return_to=%2F"
	for _, step := range []string{"login", "authorize", "callback"} {
		resp, body := do(t, client, http.MethodGet, u, nil)
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("crafted login, %s: %d %s", step, resp.StatusCode, body)
		}
		u = next.String()
	}
	return client, c.newestSession(t)
}

// newestSession is the record, tokens included, of the session made last.
func (c *cluster) newestSession(t *testing.T) *session.Record {
	t.Helper()
	list, err := c.inst[0].sessions.List(context.Background(), 1000)
	if err != nil || len(list) == 0 {
		t.Fatalf("no session after login: %v", err)
	}
	rec, err := c.inst[0].sessions.Lookup(context.Background(), list[0].Handle)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// alive reports whether the session of handle still exists.
func (c *cluster) alive(t *testing.T, handle string) bool {
	t.Helper()
	_, err := c.inst[0].sessions.Lookup(context.Background(), handle)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
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
