// Command harness is authgate's load harness (issue 8, docs/benchmarks.md). Run it through
// scripts/bench.sh, which builds the authgate binary and this program and pins them to CPUs.
//
// It starts, on loopback: an upstream answering 100 bytes (counting new connections), a bare
// httputil.ReverseProxy in its own process, devidp in its own process, and the real
// `authgate serve` with a generated config (Redis sessions in a flushed Redis DB, a fresh
// Postgres database). It logs in once through devidp's form, seeds N sessions through
// session.Store.Save, then drives wrk against bare and authgate alternately, measures CPU
// time and RSS per process from /proc, Redis memory per session, gateway RSS under 256
// connections, and login throughput; it prints a markdown table.
//
//	harness [flags]              run everything (see -h)
//	harness bare-proxy ...       the baseline proxy process (started by the harness)
//	harness devidp ...           the IdP process (started by the harness)
//	harness gateway-profile ...  the gateway wired as serve wires it, with a CPU profile
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "bare-proxy":
			return bareProxyMain(ctx, args[1:], stdout)
		case "devidp":
			return devidpMain(ctx, args[1:], stdout)
		case "gateway-profile":
			return gatewayProfileMain(ctx, args[1:], stdout)
		}
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return run(ctx, cfg, stdout, stderr)
}

// config is the harness's command line.
type config struct {
	authgate      string // path of the authgate binary
	out           string // directory for logs, generated files and results
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	conns         int
	latencyRounds int
	latencyDur    time.Duration
	sessions      int
	rssConns      int
	loginWorkers  int
	loginSpread   bool // devidp and the login clients may use every CPU in the login phase
	loginDur      time.Duration
	loginUsers    int
	idpAlg        string // devidp's ID token signing algorithm
	passToken     bool   // the route has pass_access_token (sessions keep the access and refresh tokens)
	proxyCPU      string // taskset CPU list for authgate and the bare proxy; "" = no pinning
	loadCPU       string // for wrk, devidp and this process's children that drive load
	redisAddr     string
	redisDB       int
	postgresURL   string
	logLevel      string
	wrk           string
	gatewayEnv    []string // extra environment of the authgate process (GOGC, GOMEMLIMIT, GODEBUG)
	revision      string   // source revision, for the report
	upstream      string   // "raw" or "net"
	profileDur    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.authgate, "authgate", "./authgate", "authgate binary (run as: authgate serve --config FILE)")
	fs.StringVar(&c.out, "out", "", "directory for logs and results (default: a new temporary directory)")
	fs.IntVar(&c.rounds, "rounds", 3, "throughput rounds; each runs every mode once, alternating")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of one throughput run")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "unrecorded run per mode before the rounds")
	fs.IntVar(&c.conns, "c", 64, "wrk connections (keep-alive) for throughput")
	fs.IntVar(&c.latencyRounds, "latency-rounds", 3, "rounds of the concurrency-1 latency runs")
	fs.DurationVar(&c.latencyDur, "latency-duration", 5*time.Second, "length of one concurrency-1 run")
	fs.IntVar(&c.sessions, "sessions", 100000, "live sessions seeded into Redis")
	fs.IntVar(&c.rssConns, "rss-c", 256, "wrk connections while the gateway's RSS is measured")
	fs.IntVar(&c.loginWorkers, "login-workers", 16, "concurrent login clients")
	fs.BoolVar(&c.loginSpread, "login-spread", true, "in the login phase, let devidp and the login clients run on every CPU (authgate stays on -proxy-cpu); false keeps them on -load-cpu")
	fs.DurationVar(&c.loginDur, "login-duration", 10*time.Second, "length of the login throughput run")
	fs.IntVar(&c.loginUsers, "login-users", 1000, "distinct IdP users the login clients cycle through")
	fs.StringVar(&c.idpAlg, "idp-alg", "RS256", "devidp's ID token signing algorithm, RS256 or ES256: an RS256 "+
		"signature costs the IdP ~1 ms of CPU, ES256 ~25 µs, but ES256 ID tokens are ~250 characters shorter, "+
		"and the seeded sessions copy the real login's tokens")
	fs.BoolVar(&c.passToken, "pass-access-token", false, "give the route pass_access_token: authgate then keeps "+
		"the access and refresh tokens in every session (and the seeded copies carry them) and sends the "+
		"access token upstream; without it a session keeps the ID token only")
	fs.StringVar(&c.proxyCPU, "proxy-cpu", "0", "taskset CPU list of the proxies under test (\"\" = no pinning)")
	fs.StringVar(&c.loadCPU, "load-cpu", "1", "taskset CPU list of wrk and devidp (\"\" = no pinning)")
	fs.StringVar(&c.redisAddr, "redis", "127.0.0.1:6379", "Redis host:port")
	fs.IntVar(&c.redisDB, "redis-db", 15, "Redis DB number for the gateway's sessions; FLUSHED at start and end")
	fs.StringVar(&c.postgresURL, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"Postgres maintenance URL; a database authgate_bench_<random> is created and dropped")
	fs.StringVar(&c.logLevel, "log-level", "info", "authgate server.log_level (info writes one access line per request)")
	fs.StringVar(&c.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&c.revision, "revision", "", "source revision of the binary, for the report")
	fs.DurationVar(&c.profileDur, "profile-duration", 10*time.Second,
		"load per mode on the profiling gateway process (0 = no CPU profiles)")
	fs.StringVar(&c.upstream, "upstream", "raw", "upstream server: raw (minimal HTTP/1.1 loop, cheap) or net (net/http)")
	fs.Func("gateway-env", "`NAME=value` added to authgate's environment (repeatable), e.g. GOMEMLIMIT=48MiB",
		func(v string) error {
			if !strings.Contains(v, "=") {
				return fmt.Errorf("want NAME=value")
			}
			c.gatewayEnv = append(c.gatewayEnv, v)
			return nil
		})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.rounds < 0 || c.conns < 1 || c.sessions < 0 || c.duration <= 0 {
		return nil, fmt.Errorf("bad flags: -rounds >= 0, -c >= 1, -sessions >= 0, -duration > 0")
	}
	if c.out == "" {
		d, err := os.MkdirTemp("", "authgate-bench-")
		if err != nil {
			return nil, err
		}
		c.out = d
	}
	return c, os.MkdirAll(c.out, 0o755)
}
