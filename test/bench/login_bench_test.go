package bench

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/devidp"
	"github.com/authgate/authgate/test/fixture"
)

// BenchmarkLogin is one full login per op, in process over loopback: /.auth/login → devidp
// authorize and form → /.auth/callback (PKCE code exchange, ID token verification, user
// upsert in a fresh Postgres database, session write in Redis), with the IdP signing ID tokens
// with RS256 and with ES256. "serial" is one login at a time (latency); "parallel" runs
// GOMAXPROCS×8 at once (throughput). Every login has its own cookie jar; the logins share one
// keep-alive transport, as browsers share no connections but a load generator should not
// measure TCP handshakes. Profile the callback:
//
//	go test -run '^$' -bench Login -cpuprofile cpu.out ./test/bench/ && go tool pprof -top bench.test cpu.out
func BenchmarkLogin(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			issuer, secret := startIdP(b, alg)
			g := fixture.StartGateway(b, fixture.GatewayOptions{Postgres: true, Issuer: issuer, ClientSecret: secret})
			rt := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
			b.Cleanup(rt.CloseIdleConnections)
			login := func(b *testing.B) {
				jar, _ := cookiejar.New(nil)
				c := &http.Client{Jar: jar, Transport: rt, Timeout: 15 * time.Second,
					CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp := g.Login(b, c, "/", "alice", "alice")
				resp.Body.Close()
				if resp.StatusCode != http.StatusFound || len(resp.Cookies()) == 0 {
					b.Fatalf("callback answered %d", resp.StatusCode)
				}
			}
			login(b) // discovery and first connections
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					login(b)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						login(b)
					}
				})
			})
		})
	}
}

// startIdP serves a devidp signing with alg, with the demo users and client "authgate".
func startIdP(b *testing.B, alg string) (issuer, secret string) {
	b.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer = "http://" + srv.Listener.Addr().String()
	s := make([]byte, 24)
	_, _ = rand.Read(s)
	secret = hex.EncodeToString(s)
	p, err := devidp.New(devidp.Options{Issuer: issuer, SigningAlgorithm: alg,
		Clients: []devidp.Client{{ID: "authgate", Secret: secret, RedirectURIs: fixture.DefaultRedirectURIs()}}})
	if err != nil {
		srv.Close()
		b.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	b.Cleanup(srv.Close)
	return issuer, secret
}
