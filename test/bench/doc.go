// Package bench measures the cost of authgate's request path against a bare
// httputil.ReverseProxy (issue 8, docs/benchmarks.md).
//
// In-process benchmarks (the handler only: no sockets, the upstream stubbed at the transport
// with a fixed 100-byte answer):
//
//	go test -run '^$' -bench . -benchmem ./test/bench/
//	go test -run '^$' -bench 'GatewayRedis/cache' -cpuprofile cpu.out ./test/bench/ && go tool pprof -top bench.test cpu.out
//
// TestProxyAllocBudget runs in every `go test` and fails when the authenticated proxy path
// allocates more than it does today. The load harness (real processes, wrk, Redis, Postgres,
// logins) is ./harness, run by scripts/bench.sh.
package bench
