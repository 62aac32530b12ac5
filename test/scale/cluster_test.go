package scale

import (
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// cluster is a set of gateway instances on the shared Redis (one key prefix for sessions,
// locks and signing keys), one user database and one OP, as replicas behind a load balancer
// would (fixture.Deployment).
type cluster struct{ *fixture.Deployment }

type clusterOptions struct {
	n            int
	issuer       string // default: a fresh devidp OP (see op)
	clientSecret string
	op           *fixture.OP
	refreshSkew  time.Duration
	targets      map[string]string // route name -> upstream URL; default the echo upstream
}

// startCluster starts o.n gateways that share everything shared in production
// (fixture.StartDeployment on the machine's Redis).
func startCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	routes := fixture.DeploymentRoutes()
	for i := range routes {
		if u, ok := o.targets[routes[i].Name]; ok {
			routes[i].Target = fixture.MustURL(t, u)
		}
	}
	return &cluster{fixture.StartDeployment(t, fixture.DeploymentOptions{N: o.n, Issuer: o.issuer,
		ClientSecret: o.clientSecret, OP: o.op, RefreshSkew: o.refreshSkew, Routes: routes})}
}
