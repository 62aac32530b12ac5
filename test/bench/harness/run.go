package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
)

// harness holds the running pieces of one benchmark run.
type harness struct {
	c        *config
	log      io.Writer
	cleanups []func() // run in reverse order
	up       *upstream
	bare, gw *proc
	bareH    *proc // the bare proxy that also sends authgate's identity headers
	idp      *proc
	bareURL  string
	bareHURL string
	gwURL    string
	cookie   string // the live session of the real login
	cookies  string // file of seeded session cookies
	rdb      *redis.Client
	store    *session.Store // same secrets and prefix as the gateway
	summary  string         // wrk scripts
	cookiesL string
	setup    *gatewaySetup
	res      results
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "== "+format+"\n", args...)
}

func (h *harness) onCleanup(f func()) { h.cleanups = append(h.cleanups, f) }

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
}

func run(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	h := &harness{c: c, log: stderr}
	defer h.cleanup()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"preflight", h.preflight},
		{"start upstream, bare proxy, devidp", h.startSide},
		{"start authgate", h.startGateway},
		{"log in through devidp", h.loginOnce},
		{"seed sessions", h.seed},
		{"throughput", h.throughput},
		{"latency at concurrency 1", h.latency},
		{"RSS under load", h.rssUnderLoad},
		{"CPU profiles", h.profiles},
		{"login throughput", h.logins},
	}
	for _, s := range steps {
		h.logf("%s", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	report := h.res.markdown(c)
	fmt.Fprint(stdout, report)
	if err := os.WriteFile(filepath.Join(c.out, "results.md"), []byte(report), 0o644); err != nil {
		return err
	}
	h.logf("results in %s", c.out)
	return nil
}

func (h *harness) preflight(ctx context.Context) error {
	for _, bin := range []string{h.c.wrk, h.c.authgate} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
	}
	if h.c.proxyCPU != "" || h.c.loadCPU != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("taskset (util-linux) is needed for pinning, or pass -proxy-cpu= -load-cpu=: %w", err)
		}
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.c.redisAddr, DB: h.c.redisDB, ReadTimeout: 10 * time.Second})
	h.onCleanup(func() { _ = h.rdb.Close() })
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", h.c.redisAddr, err)
	}
	if err := h.rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	h.onCleanup(func() { _ = h.rdb.FlushDB(context.Background()).Err() })
	h.res.machine = machineInfo()
	if v, err := exec.CommandContext(ctx, h.c.authgate, "version").Output(); err == nil {
		h.res.version = strings.TrimSpace(string(v))
	}
	var err error
	h.summary, h.cookiesL, err = writeWrkScripts(h.c.out)
	return err
}

func (h *harness) startSide(_ context.Context) error {
	var err error
	if h.up, err = startUpstream(h.c.upstream); err != nil {
		return err
	}
	h.onCleanup(func() { _ = h.up.close() })
	self, err := os.Executable()
	if err != nil {
		return err
	}
	idle := strconv.Itoa(max(h.c.conns, h.c.rssConns))
	if h.bare, h.bareURL, err = h.startBare(self, "bare-proxy", idle); err != nil {
		return err
	}
	h.bareH, h.bareHURL, err = h.startBare(self, "bare-proxy-headers", idle, "-identity-headers")
	return err
}

// startBare starts one bare proxy process (harness bare-proxy) named name and returns it and
// its URL.
func (h *harness) startBare(self, name, idle string, flags ...string) (*proc, string, error) {
	argv := append([]string{self, "bare-proxy", "-upstream", h.up.url, "-idle", idle}, flags...)
	p, out, err := startProc(name, h.c.out, command(h.c.proxyCPU, argv...), nil)
	if err != nil {
		return nil, "", err
	}
	h.onCleanup(p.stop)
	u, err := p.readLine(out)
	return p, u, err
}

func (h *harness) startGateway(ctx context.Context) error {
	clientSecret := base64.RawURLEncoding.EncodeToString(randomBytes(24))
	idp, out, err := startProc("devidp", h.c.out,
		command(h.c.loadCPU, mustExecutable(), "devidp", "-users", strconv.Itoa(h.c.loginUsers), "-alg", h.c.idpAlg),
		[]string{"BENCH_CLIENT_SECRET=" + clientSecret})
	if err != nil {
		return err
	}
	h.idp = idp
	h.onCleanup(idp.stop)
	issuer, err := idp.readLine(out)
	if err != nil {
		return err
	}
	dbURL, drop, err := createDatabase(ctx, h.c.postgresURL)
	if err != nil {
		return err
	}
	h.onCleanup(drop)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	g := &gatewaySetup{url: "http://" + addr, issuer: issuer, upstream: h.up.url,
		redisURL: fmt.Sprintf("redis://%s/%d", h.c.redisAddr, h.c.redisDB), dbURL: dbURL,
		secret: randomBytes(32), clientSecret: clientSecret, logLevel: h.c.logLevel, passToken: h.c.passToken, env: h.c.gatewayEnv}
	if h.gw, err = startAuthgate(ctx, h.c.authgate, h.c.out, h.c.proxyCPU, g); err != nil {
		return err
	}
	h.onCleanup(h.gw.stop)
	h.gwURL, h.setup = g.url, g
	h.store, err = session.NewRedis(h.rdb, session.Options{CookieName: sessionCookie, Secrets: [][]byte{g.secret},
		CacheTTL: -1})
	if err != nil {
		return err
	}
	h.onCleanup(func() { _ = h.store.Close() })
	return nil
}

func mustExecutable() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return p
}

// loginOnce logs alice in through the real flow and checks that the cookie works through the
// gateway and that the gateway refuses a request without it.
func (h *harness) loginOnce(ctx context.Context) error {
	var err error
	if h.cookie, err = newLoginClient(h.gwURL, 2).login(ctx, "alice", "alice"); err != nil {
		return err
	}
	for _, tc := range []struct {
		cookie string
		want   int
	}{{h.cookie, http.StatusOK}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.gwURL+"/app/page", nil)
		if tc.cookie != "" {
			req.Header.Set("Cookie", tc.cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == http.StatusOK && string(b) != upstreamBody) {
			return fmt.Errorf("GET through the gateway (cookie %v): %d, want %d", tc.cookie != "", resp.StatusCode, tc.want)
		}
	}
	return nil
}

func (h *harness) seed(ctx context.Context) error {
	tmpl, err := templateRecord(ctx, h.store)
	if err != nil {
		return err
	}
	h.res.tokenLens = [3]int{len(tmpl.IDToken), len(tmpl.AccessToken), len(tmpl.RefreshToken)}
	h.res.userAgentLen = len(tmpl.UserAgent)
	if h.c.sessions == 0 {
		return nil
	}
	before, err := usedMemory(ctx, h.rdb)
	if err != nil {
		return err
	}
	start := time.Now()
	h.cookies = filepath.Join(h.c.out, "cookies.txt")
	if err := seedSessions(ctx, h.store, tmpl, h.c.sessions, 32, h.cookies); err != nil {
		return err
	}
	h.res.seedTime = time.Since(start)
	after, err := usedMemory(ctx, h.rdb)
	if err != nil {
		return err
	}
	h.res.sessions = h.c.sessions
	h.res.usedMemDelta = after - before
	h.res.census, err = keyCensus(ctx, h.rdb, 200)
	return err
}

// mode is one thing wrk drives.
type mode struct {
	name    string
	p       *proc
	url     string
	cookies bool // a random seeded session per request instead of the one hot session
	// reference marks a mode that only explains the others (bare+headers): measured in the
	// throughput rounds and profiled, left out of the latency and RSS phases.
	reference bool
}

// modeBareHeaders is the bare proxy that also sends the headers authgate adds for a session.
const modeBareHeaders = "bare+headers"

func (h *harness) modes() []mode {
	ms := []mode{{name: "bare", p: h.bare, url: h.bareURL}, {name: "authgate", p: h.gw, url: h.gwURL}}
	if h.cookies != "" {
		ms = append(ms, mode{name: "authgate-100k", p: h.gw, url: h.gwURL, cookies: true})
	}
	if h.bareH != nil {
		ms = append(ms, mode{name: modeBareHeaders, p: h.bareH, url: h.bareHURL, reference: true})
	}
	return ms
}

// measure runs wrk once against m and reads the process's CPU time, RSS, the upstream's
// new connections and Redis's CPU time around it.
func (h *harness) measure(ctx context.Context, m mode, conns int, d time.Duration) (sample, error) {
	w := wrkRun{bin: h.c.wrk, cpus: h.c.loadCPU, url: m.url + "/app/page", conns: conns, d: d,
		cookie: h.cookie, script: h.summary}
	if m.cookies {
		w.script, w.cookiesFile = h.cookiesL, h.cookies
	}
	cpu0, err := cpuTime(m.p.pid())
	if err != nil {
		return sample{}, err
	}
	conns0, rcpu0 := h.up.newConns.Load(), redisCPU(ctx, h.rdb)
	self0, _ := cpuTime(os.Getpid())
	res, err := w.run(ctx)
	if err != nil {
		return sample{}, err
	}
	cpu1, err := cpuTime(m.p.pid())
	if err != nil {
		return sample{}, errors.Join(err, m.p.alive())
	}
	self1, _ := cpuTime(os.Getpid())
	s := sample{mode: m.name, conns: conns, wrk: res, cpu: cpu1 - cpu0, newConns: h.up.newConns.Load() - conns0,
		redisCPU: redisCPU(ctx, h.rdb) - rcpu0, loadCPU: res.CPU + self1 - self0}
	s.rss, s.hwm, err = memStatus(m.p.pid())
	h.trimLog()
	return s, err
}

// trimLog keeps the gateway's access log from filling the disk (it is opened O_APPEND).
func (h *harness) trimLog() {
	p := filepath.Join(h.c.out, "authgate.log")
	if fi, err := os.Stat(p); err == nil && fi.Size() > 64<<20 {
		_ = os.Truncate(p, 0)
	}
}

// redisCPU is used_cpu_user+used_cpu_sys of the Redis server (INFO cpu); 0 when unknown.
func redisCPU(ctx context.Context, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
