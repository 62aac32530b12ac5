package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// markdown renders the results and the issue-8 targets.
func (r *results) markdown(c *config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## authgate load harness\n\nMachine: %s.\nBinary: %s, source %s.\n", r.machine, r.version, c.revision)
	p("Proxies pinned to CPU %q, wrk/devidp/upstream to CPU %q; Redis and Postgres unpinned. "+
		"authgate log_level %s (one JSON access line per request to a file), route pass_access_token %t; "+
		"extra authgate environment: %q.\n\n",
		c.proxyCPU, c.loadCPU, c.logLevel, c.passToken, c.gatewayEnv)
	r.throughputTable(p, c)
	r.latencyTable(p)
	r.memoryTables(p, c)
	r.loginTable(p)
	r.profileSection(p)
	r.targets(p, c)
	return b.String()
}

func (r *results) throughputTable(p func(string, ...any), c *config) {
	p("### Throughput: authenticated GET, %d connections, %d rounds × %s, alternating\n\n", c.conns, c.rounds, c.duration)
	p("| mode | req/s mean | req/s min–max | p50 | p99 | proxy CPU µs/req | proxy CPU use | load side CPU use | Redis CPU µs/req | upstream new conns /1k req | req/s vs bare (mean; per round) | CPU/req: bare ÷ mode |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	bare := aggregate(r.throughput, "bare")
	for _, m := range []string{"bare", modeBareHeaders, "authgate", "authgate-100k"} {
		a := aggregate(r.throughput, m)
		if a.n == 0 {
			continue
		}
		ratio, cpuRatio := "1.00", "1.00"
		if m != "bare" {
			lo, hi := pairedRatios(r.throughput, m)
			ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", a.rpsMean/bare.rpsMean, lo, hi)
			cpuRatio = fmt.Sprintf("%.2f", bare.cpu/a.cpu)
		}
		redis := fmt.Sprintf("%.1f", a.redis)
		if m == "bare" || m == modeBareHeaders {
			redis = "–"
		}
		p("| %s | %.0f | %.0f–%.0f | %s | %s | %.1f | %.0f%% | %.0f%% | %s | %.2f | %s | %s |\n", m, a.rpsMean, a.rpsMin,
			a.rpsMax, ms(a.p50), ms(a.p99), a.cpu, a.util*100, a.loadUtil*100, redis, a.connsPer1k, ratio, cpuRatio)
		if a.statusErrors+a.socketErrors > 0 {
			p("\n**%s: %d non-2xx answers, %d socket errors: results invalid.**\n\n", m, a.statusErrors, a.socketErrors)
		}
	}
	if bh, gw := aggregate(r.throughput, modeBareHeaders), aggregate(r.throughput, "authgate"); bh.n > 0 && gw.n > 0 && bare.n > 0 {
		p("\nOf authgate's %+.1f µs of CPU per request over bare, sending the seven headers costs the bare proxy %+.1f µs "+
			"(%s: %.2f× bare's req/s); authgate's own work, net of what its direct transport saves over http.Transport "+
			"(upstream/direct.go), is the remaining %+.1f µs (authgate: %.2f× %s's req/s).\n",
			gw.cpu-bare.cpu, bh.cpu-bare.cpu, modeBareHeaders, bh.rpsMean/bare.rpsMean, gw.cpu-bh.cpu, gw.rpsMean/bh.rpsMean, modeBareHeaders)
	}
	p("\n`authgate` sends one hot session (served from the in-process cache after the first read each second); " +
		"`authgate-100k` picks one of the seeded sessions at random per request (almost every request reads Redis). " +
		"`" + modeBareHeaders + "` is a reference, not a product: the bare proxy also setting the seven headers authgate adds for a session " +
		"(X-Auth-User-Id, -Subject, -Email, -Name, -Roles, -Groups, X-Request-Id), so the cost of sending them can be told apart " +
		"from the gateway's own work. " +
		"Proxy CPU use is the proxy process's CPU time over the run, as a share of its one pinned core; load side is wrk " +
		"plus the upstream on the other core: when the proxy is below ~95%%, something else (the load side, or other work " +
		"on this machine) limited the run, and \"CPU/req: bare ÷ mode\" is the ratio to trust (it is the throughput ratio " +
		"when the proxy's core is the bottleneck). Redis CPU is the whole server's (other users of it count too).\n\n")
}

func (r *results) latencyTable(p func(string, ...any)) {
	if len(r.latency) == 0 {
		return
	}
	bare := aggregate(r.latency, "bare")
	p("### Latency at concurrency 1 (mean over rounds)\n\n| mode | p50 | p99 | req/s | CPU µs/req | p50 − bare |\n|---|---|---|---|---|---|\n")
	for _, m := range []string{"bare", "authgate"} {
		a := aggregate(r.latency, m)
		p("| %s | %s | %s | %.0f | %.1f | %+.3f ms |\n", m, ms(a.p50), ms(a.p99), a.rpsMean, a.cpu, (a.p50-bare.p50)/1000)
	}
	p("\n")
}

func (r *results) memoryTables(p func(string, ...any), c *config) {
	if r.sessions > 0 {
		p("### Redis memory, %d seeded sessions (seeded in %s through session.Store.Save)\n\n", r.sessions, r.seedTime.Round(1e6))
		p("Token sizes of the real login copied into every seeded session: ID %d, access %d, refresh %d characters "+
			"(the route's pass_access_token: %t; without it a session keeps no access or refresh token); "+
			"its user agent, a browser's, %d bytes.\n\n",
			r.tokenLens[0], r.tokenLens[1], r.tokenLens[2], c.passToken, r.userAgentLen)
		p("| key kind | keys | MEMORY USAGE mean | value size mean (bytes, or set members) |\n|---|---|---|---|\n")
		for _, k := range r.census {
			p("| `%s` | %d | %.0f B | %.0f |\n", k.kind, k.count, k.meanUsage, k.meanValueLen)
		}
		p("\nPer session: **%.0f B** by MEMORY USAGE (all keys of the DB / sessions); **%.0f B** by INFO memory "+
			"used_memory before/after (whole server, includes the expires table).\n\n", r.usagePerSession(),
			float64(r.usedMemDelta)/float64(r.sessions))
	}
	if len(r.rss) > 0 {
		p("### RSS under load (%d connections, a random seeded session per request)\n\n", r.rss[0].conns)
		p("| process | req/s | RSS after | peak RSS sampled | VmHWM |\n|---|---|---|---|---|\n")
		p("| authgate, hot session only (%d conns, before any seeded-session traffic) | | %s | | |\n", c.conns, mib(r.rssHot))
		for _, s := range r.rss {
			p("| %s | %.0f | %s | %s | %s |\n", s.mode, s.wrk.rps(), mib(s.rss), mib(s.peakRSS), mib(s.hwm))
		}
		p("\n")
	}
}

func (r *results) loginTable(p func(string, ...any)) {
	l := r.login
	if l == nil {
		return
	}
	rate := float64(l.ok) / l.elapsed.Seconds()
	p("### Login throughput (%d clients, %s, IdP signs %s; /.auth/login → devidp form GET+POST → /.auth/callback)\n\n",
		l.workers, l.elapsed.Round(1e6), l.idpAlg)
	p("devidp and the login clients on %s, authgate on its pinned CPU.\n\n", l.placement)
	p("| logins/s | ok | failed | p50 | p99 | CPU ms/login: authgate | devidp | login clients | Redis | Postgres | CPU use: authgate | devidp + clients |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	sec, n := l.elapsed.Seconds(), float64(max(l.ok, 1))
	perLogin := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	p("| %.0f | %d | %d | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.0f%% |\n\n", rate, l.ok, l.failed,
		l.p50.Round(10e3), l.p99.Round(10e3), perLogin(l.gwCPU), perLogin(l.idpCPU), perLogin(l.selfCPU),
		perLogin(l.redisCPU), perLogin(l.pgCPU), l.gwCPU.Seconds()/sec*100, (l.idpCPU+l.selfCPU).Seconds()/sec*100)
	total := perLogin(l.gwCPU + l.idpCPU + l.selfCPU + l.redisCPU + l.pgCPU)
	p("All of it together: %.2f ms of CPU per login, i.e. at most about %.0f logins/s on this machine's %d CPUs. ",
		total, float64(onlineCPUs())*1000/total, onlineCPUs())
	p("authgate alone would do about **%.0f logins/s per CPU** at its own CPU cost per login.\n\n",
		1000/perLogin(l.gwCPU))
}

func (r *results) targets(p func(string, ...any), c *config) {
	p("### Issue 8 targets\n\n| target | measured | |\n|---|---|---|\n")
	check := func(name, got string, ok bool) {
		mark := "met"
		if !ok {
			mark = "**missed**"
		}
		p("| %s | %s | %s |\n", name, got, mark)
	}
	bare, gw := aggregate(r.throughput, "bare"), aggregate(r.throughput, "authgate")
	if bare.n > 0 && gw.n > 0 {
		check("throughput ≥ 0.90× bare", fmt.Sprintf("%.2f×", gw.rpsMean/bare.rpsMean), gw.rpsMean >= 0.9*bare.rpsMean)
		check("upstream new conns < 5 / 1,000 req", fmt.Sprintf("%.2f", gw.connsPer1k), gw.connsPer1k < 5)
	}
	if lb, lg := aggregate(r.latency, "bare"), aggregate(r.latency, "authgate"); lb.n > 0 && lg.n > 0 {
		d := (lg.p50 - lb.p50) / 1000
		check("p50 at c=1 within +0.1 ms of bare", fmt.Sprintf("%+.3f ms", d), d <= 0.1)
	}
	for _, s := range r.rss {
		if s.mode == "authgate-100k" {
			peak := max(s.peakRSS, s.rss)
			check(fmt.Sprintf("gateway RSS < 64 MiB (%d sessions, %d conns)", r.sessions, s.conns), mib(peak), peak < 64<<20)
		}
	}
	if r.sessions > 0 {
		usage := r.usagePerSession()
		check("Redis memory per session < 1 KiB (MEMORY USAGE)", fmt.Sprintf("%.0f B", usage), usage < 1024)
		per := float64(r.usedMemDelta) / float64(r.sessions)
		check("Redis memory per session < 1 KiB (INFO memory)", fmt.Sprintf("%.0f B", per), per < 1024)
	}
	if l := r.login; l != nil {
		rate := float64(l.ok) / l.elapsed.Seconds()
		check("≥ 500 logins/s", fmt.Sprintf("%.0f/s", rate), rate >= 500)
	}
	p("\n")
}

func (r *results) profileSection(p func(string, ...any)) {
	if len(r.profiles) == 0 {
		return
	}
	p("### Where the CPU goes (CPU profiles under the same load, µs per request, cumulative)\n\n")
	p("Profiling copies of each process, pinned the same way (authgate: `harness gateway-profile`, the packages " +
		"wired as `authgate serve` wires them). Rows overlap (cumulative).\n\n| function |")
	for _, pr := range r.profiles {
		p(" %s |", pr.mode)
	}
	p("\n|---|")
	for range r.profiles {
		p("---|")
	}
	p("\n| **total CPU per request** |")
	for _, pr := range r.profiles {
		p(" **%.1f** (%.0f req/s) |", pr.cpuPerReq(), pr.wrk.rps())
	}
	p("\n")
	for i, b := range breakdownFuncs() {
		p("| %s |", b.label)
		for _, pr := range r.profiles {
			if i < len(pr.perReq) {
				p(" %.1f |", pr.perReq[i])
			} else {
				p(" |")
			}
		}
		p("\n")
	}
	p("\nProfiles and `go tool pprof -top` of each: ")
	for _, pr := range r.profiles {
		p("`%s` ", filepath.Base(pr.path))
	}
	p("in the output directory.\n\n")
}

// usagePerSession is the MEMORY USAGE of every key of the DB over the seeded sessions.
func (r *results) usagePerSession() float64 {
	var sum float64
	for _, k := range r.census {
		sum += k.meanUsage * float64(k.count)
	}
	return sum / float64(r.sessions)
}
