package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profiles runs a profiling copy of each process under test, pinned like it (for authgate:
// gateway-profile, the same packages wired as serve wires them), drives each mode at -c
// connections, and saves the CPU profile and its `go tool pprof -top`.
func (h *harness) profiles(ctx context.Context) error {
	if h.c.profileDur <= 0 {
		return nil
	}
	for _, m := range h.modes() {
		prof := filepath.Join(h.c.out, "cpu-"+m.name+".pprof")
		argv := []string{mustExecutable(), "gateway-profile", "-config", filepath.Join(h.c.out, "authgate.yaml"),
			"-cpuprofile", prof}
		if m.name == "bare" || m.name == modeBareHeaders {
			argv = []string{mustExecutable(), "bare-proxy", "-upstream", h.up.url, "-idle", strconv.Itoa(h.c.conns),
				"-cpuprofile", prof}
			if m.name == modeBareHeaders {
				argv = append(argv, "-identity-headers")
			}
		}
		p, out, err := startProc("profile-"+m.name, h.c.out, command(h.c.proxyCPU, argv...), h.setup.environ())
		if err != nil {
			return err
		}
		u, err := p.readLine(out)
		if err != nil {
			p.stop()
			return err
		}
		m.p, m.url = p, u
		s, err := h.measure(ctx, m, h.c.conns, h.c.profileDur)
		p.stop()
		if err != nil {
			return err
		}
		top := pprofTop(ctx, prof)
		pr := profileRun{sample: s, path: prof, top: top}
		if cum, err := pprofCum(ctx, prof); err == nil {
			pr.perReq = breakdown(cum, s.wrk.Requests)
		}
		h.res.profiles = append(h.res.profiles, pr)
		h.logf("profiled %s: %.0f req/s, %.1f µs/req CPU; %s", m.name, s.wrk.rps(), s.cpuPerReq(), prof)
	}
	return nil
}

// pprofTop is `go tool pprof -top` of a profile (the first 30 functions by flat time), or a
// note when the go tool is missing.
func pprofTop(ctx context.Context, path string) string {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", path).Output()
	if err != nil {
		return fmt.Sprintf("(go tool pprof failed: %v)", err)
	}
	if err := os.WriteFile(path+".top.txt", out, 0o644); err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(out))
}

// profileRun is a CPU profile of one mode.
type profileRun struct {
	sample
	path, top string
	perReq    []float64 // µs per request of each breakdownFuncs entry
}

// breakdownFunc is a function (or several, "|"-separated) whose cumulative CPU per request
// the report compares across modes (absent ones count zero).
type breakdownFunc struct{ label, fn string }

// breakdownFuncs lists them, as the report shows them.
func breakdownFuncs() []breakdownFunc {
	return []breakdownFunc{
		{"whole HTTP server side (net/http conn.serve)", "net/http.(*conn).serve"},
		{"gateway handler (observe … proxy)", "github.com/authgate/authgate/gateway.(*Gateway).ServeHTTP"},
		{"session.Store.Load (cookie, cache or Redis)", "github.com/authgate/authgate/session.(*Store).Load"},
		{"access log line (JSON encode + write)", "github.com/authgate/authgate/gateway.(*accessLog).write|log/slog.(*Logger).LogAttrs"},
		{"metrics ObserveRequest", "github.com/authgate/authgate/metrics.(*Metrics).ObserveRequest"},
		{"httputil.ReverseProxy.ServeHTTP", "net/http/httputil.(*ReverseProxy).ServeHTTP"},
		{"authgate Rewrite (header hygiene, identity)", "github.com/authgate/authgate/upstream.(*Proxy).rewriteFunc.func1|github.com/authgate/authgate/upstream.(*Proxy).rewriteFunc.1"},
		{"read deadlines and timers (route timeout, server)", "net.(*conn).SetReadDeadline|time.NewTimer"},
		{"upstream round trip: http.Transport's writeLoop + readLoop, or the direct transport (RoundTrip + body)",
			"net/http.(*persistConn).writeLoop|net/http.(*persistConn).readLoop|" +
				"github.com/authgate/authgate/upstream.(*directTransport).RoundTrip|github.com/authgate/authgate/upstream.(*directBody).Read"},
		{"write(2) on sockets and files", "syscall.write"},
		{"read(2)", "syscall.read"},
		{"GC background marking", "runtime.gcBgMarkWorker"},
		{"allocation (mallocgc, incl. assists)", "runtime.mallocgc"},
		{"scheduler (findRunnable, netpoll)", "runtime.findRunnable"},
	}
}

// pprofCum returns the cumulative seconds of every function in a profile.
func pprofCum(ctx context.Context, path string) (map[string]float64, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodefraction=0", "-edgefraction=0", "-nodecount=100000", path).Output()
	if err != nil {
		return nil, err
	}
	cum := map[string]float64{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		if d, err := time.ParseDuration(f[3]); err == nil {
			cum[strings.Join(f[5:], " ")] = d.Seconds()
		}
	}
	return cum, nil
}

// breakdown is µs of CPU per request for each of breakdownFuncs.
func breakdown(cum map[string]float64, requests int64) []float64 {
	funcs := breakdownFuncs()
	out := make([]float64, len(funcs))
	for i, b := range funcs {
		for fn := range strings.SplitSeq(b.fn, "|") {
			out[i] += cum[fn] * 1e6 / float64(max(requests, 1))
		}
	}
	return out
}
