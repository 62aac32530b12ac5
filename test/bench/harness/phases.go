package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
)

// throughput warms every mode up, then runs rounds × modes, alternating, at -c connections.
func (h *harness) throughput(ctx context.Context) error {
	if h.c.rounds == 0 {
		return nil
	}
	for _, m := range h.modes() {
		s, err := h.measure(ctx, m, h.c.conns, h.c.warmup)
		if err != nil {
			return fmt.Errorf("warm-up %s: %w", m.name, err)
		}
		if m.name == "authgate" {
			h.res.rssHot = s.rss
		}
	}
	for r := range h.c.rounds {
		for _, m := range h.modes() {
			s, err := h.measure(ctx, m, h.c.conns, h.c.duration)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, m.name, err)
			}
			s.round = r
			h.res.throughput = append(h.res.throughput, s)
			h.logf("round %d %-14s %8.0f req/s  p50 %5dµs  p99 %6dµs  cpu %5.1fµs/req  errors %d/%d",
				r+1, m.name, s.wrk.rps(), s.wrk.P50US, s.wrk.P99US, s.cpuPerReq(), s.wrk.StatusErrors, s.wrk.SocketErrors)
		}
	}
	return nil
}

// latency runs bare and authgate (hot session) at concurrency 1, alternating.
func (h *harness) latency(ctx context.Context) error {
	for r := range h.c.latencyRounds {
		for _, m := range h.modes()[:2] {
			s, err := h.measure(ctx, m, 1, h.c.latencyDur)
			if err != nil {
				return fmt.Errorf("c1 %s: %w", m.name, err)
			}
			s.round = r
			h.res.latency = append(h.res.latency, s)
			h.logf("c1 round %d %-9s p50 %4dµs  p99 %5dµs  %6.0f req/s", r+1, m.name, s.wrk.P50US, s.wrk.P99US, s.wrk.rps())
		}
	}
	return nil
}

// rssUnderLoad drives -rss-c connections with a random seeded session per request against
// the gateway (and the bare proxy for reference) and records the peak RSS.
func (h *harness) rssUnderLoad(ctx context.Context) error {
	if h.cookies == "" || h.c.rssConns <= 0 {
		return nil // needs the seeded sessions
	}
	for _, m := range h.modes() {
		if m.name == "authgate" || m.reference {
			continue // the hot-session mode; the seeded mode is the realistic one here
		}
		sctx, stop := context.WithCancel(ctx)
		peak := sampleRSS(sctx, m.p.pid())
		s, err := h.measure(ctx, m, h.c.rssConns, h.c.duration)
		stop()
		if err != nil {
			return fmt.Errorf("%s at %d connections: %w", m.name, h.c.rssConns, err)
		}
		s.peakRSS = <-peak
		h.res.rss = append(h.res.rss, s)
		h.logf("%-14s c=%d %8.0f req/s  RSS %s (peak %s, VmHWM %s)", m.name, h.c.rssConns, s.wrk.rps(),
			mib(s.rss), mib(s.peakRSS), mib(s.hwm))
	}
	return nil
}

// logins runs full logins with -login-workers clients and reads the CPU time the gateway and
// devidp spent on them.
func (h *harness) logins(ctx context.Context) error {
	if h.c.loginDur <= 0 || h.c.loginWorkers <= 0 {
		return nil
	}
	placement, err := h.spreadLoad(ctx)
	if err != nil {
		return err
	}
	l := newLoginClient(h.gwURL, h.c.loginWorkers*2)
	if _, err := l.login(ctx, "user0", "pw0"); err != nil { // discovery, first connections
		return err
	}
	gw0, err := cpuTime(h.gw.pid())
	if err != nil {
		return err
	}
	idp0, err := cpuTime(h.idp.pid())
	if err != nil {
		return err
	}
	self0, _ := cpuTime(os.Getpid())
	rcpu0, pg0 := redisCPU(ctx, h.rdb), commCPU("postgres")
	r := loginLoad(ctx, l, h.c.loginWorkers, h.c.loginUsers, h.c.loginDur)
	gw1, err1 := cpuTime(h.gw.pid())
	idp1, err2 := cpuTime(h.idp.pid())
	self1, err3 := cpuTime(os.Getpid())
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("cpu time after the logins: %w", err)
	}
	h.res.login = &loginSample{loginResult: r, gwCPU: gw1 - gw0, idpCPU: idp1 - idp0, selfCPU: self1 - self0,
		redisCPU: redisCPU(ctx, h.rdb) - rcpu0, pgCPU: commCPU("postgres") - pg0, workers: h.c.loginWorkers,
		idpAlg: h.c.idpAlg, placement: placement}
	h.logf("logins: %d ok, %d failed in %s (%.0f/s); first error: %s", r.ok, r.failed,
		r.elapsed.Round(time.Millisecond), float64(r.ok)/r.elapsed.Seconds(), r.firstErr)
	if r.ok == 0 {
		return fmt.Errorf("no login succeeded: %s", r.firstErr)
	}
	return nil
}

// spreadLoad lets devidp and this process (the login clients) run on every CPU for the login
// phase, the last one: kept on -load-cpu, the IdP's signing and the clients fill that CPU and
// set the login rate while the gateway's CPU is half idle. The gateway stays on -proxy-cpu.
// Go (1.25 and later) raises a process's GOMAXPROCS by itself when its CPU affinity grows.
// It returns where they run, for the report.
func (h *harness) spreadLoad(ctx context.Context) (string, error) {
	if h.c.loadCPU == "" {
		return "any CPU (nothing pinned)", nil
	}
	if !h.c.loginSpread {
		return fmt.Sprintf("CPU %s", h.c.loadCPU), nil
	}
	all := fmt.Sprintf("0-%d", onlineCPUs()-1)
	for _, pid := range []int{h.idp.pid(), os.Getpid()} {
		out, err := exec.CommandContext(ctx, "taskset", "-a", "-p", "-c", all, strconv.Itoa(pid)).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("taskset -a -p -c %s %d: %w: %s", all, pid, err, out)
		}
	}
	runtime.GOMAXPROCS(onlineCPUs()) // at once, rather than at the runtime's next check
	h.logf("login phase: devidp and the login clients on CPUs %s, authgate on %q", all, h.c.proxyCPU)
	return "every CPU (" + all + ")", nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
