package bench

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/test/fixture"
)

// BenchmarkLogin is one full login per op, in process over loopback: /.auth/login → devidp
// authorize and form → /.auth/callback (PKCE code exchange, ID token verification, user
// upsert in a fresh Postgres database, session write in Redis). "serial" is one login at a
// time (latency); "parallel" runs GOMAXPROCS×8 at once (throughput). Profile the callback:
//
//	go test -run '^$' -bench Login -cpuprofile cpu.out ./test/bench/ && go tool pprof -top bench.test cpu.out
func BenchmarkLogin(b *testing.B) {
	g := fixture.StartGateway(b, fixture.GatewayOptions{Postgres: true})
	login := func(b *testing.B) {
		resp := g.Login(b, g.Client(), "/", "alice", "alice")
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
}
