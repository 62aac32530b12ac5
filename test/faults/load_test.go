package faults

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Load test shape. The phase duration defaults to a few seconds so that the package stays well
// under 90s on two cores; AUTHGATE_LOAD_DURATION (a Go duration) sets it for real runs.
const (
	loadSessions     = 1000
	loadWorkers      = 64
	defaultLoadPhase = 4 * time.Second
)

func loadPhase(t *testing.T) time.Duration {
	v := os.Getenv("AUTHGATE_LOAD_DURATION")
	if v == "" {
		return defaultLoadPhase
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("AUTHGATE_LOAD_DURATION=%q: want a positive Go duration", v)
	}
	return d
}

// phaseResult is what one load phase measured.
type phaseResult struct {
	requests      int
	rate          float64
	p50, p99, max time.Duration
	goroutines    int    // after the phase, once idle, not counting idle keep-alive connections
	idleConns     int    // goroutines of idle keep-alive connections (pools, bounded by the workers)
	heap          uint64 // HeapInuse after the phase, after a GC
}

// TestLoad: 1,000 sessions, 64 workers sending a mix of authenticated GETs and same-origin
// POSTs (and a few requests that must be refused) through the gateway to the guard upstream,
// in two equal phases: not one unexpected status, no request let through without its session,
// no goroutine growth and a comparable heap between the phases.
func TestLoad(t *testing.T) {
	rg := startRig(t, rigOptions{})
	start := time.Now()
	live := rg.mint(t, "load", loadSessions)
	minted := time.Since(start)
	shots := mixedShots(rg.URL, live, rg.mintRevoked(t, "revoked", 10))
	d := loadPhase(t)

	var res [2]phaseResult
	for i := range res {
		l := startLoad(t, rg.URL, shots, loadOptions{workers: loadWorkers, maxRequests: 5_000_000, maxTime: d})
		time.Sleep(d)
		samples := l.stop()
		expectSafe(t, samples)
		expectStatuses(t, fmt.Sprintf("phase %d", i+1), samples, normal, 100)
		ok := notKind(samples, "cancelled")
		res[i] = phaseResult{requests: len(ok), rate: float64(len(ok)) / d.Seconds(),
			p50: percentile(ok, .5), p99: percentile(ok, .99), max: maxLatency(ok)}
		res[i].goroutines, res[i].idleConns = quietGoroutines()
		res[i].heap = heapInuse()
	}
	if g0, g1 := res[0].goroutines, res[1].goroutines; g1 > g0+3 {
		t.Errorf("goroutines grew between two equal phases: %d after the first, %d after the second", g0, g1)
	}
	for i, r := range res {
		// Per connection: the load client's two loops and the gateway's server side; the
		// gateway's two loops and the upstream's server side.
		if r.idleConns > 6*loadWorkers+10 {
			t.Errorf("phase %d left %d idle-connection goroutines for %d workers", i+1, r.idleConns, loadWorkers)
		}
	}
	if h0, h1 := res[0].heap, res[1].heap; h1 > h0+h0/2+8*mib {
		t.Errorf("heap grew between two equal phases: %d MiB after the first, %d MiB after the second", h0/mib, h1/mib)
	}
	if res[1].rate < res[0].rate/4 { // loose: the machine is shared, throughput varies
		t.Errorf("throughput fell from %.0f to %.0f req/s between two equal phases", res[0].rate, res[1].rate)
	}
	report := loadReport(d, minted, res)
	t.Log("\n" + report)
	if path := os.Getenv("AUTHGATE_LOAD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Errorf("write AUTHGATE_LOAD_REPORT: %v", err)
		}
	}
}

// quietGoroutines lets the finished phase's connections close and returns the lowest
// busyGoroutines seen over half a second.
func quietGoroutines() (busy, idleConns int) {
	time.Sleep(300 * time.Millisecond)
	busy, idleConns = busyGoroutines()
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		if b, c := busyGoroutines(); b < busy {
			busy, idleConns = b, c
		}
	}
	return busy, idleConns
}

// loadReport renders the figures as Markdown for docs/benchmarks.md.
func loadReport(d, minted time.Duration, res [2]phaseResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Load test (test/faults TestLoad): %d sessions created through the session store in %v, "+
		"%d concurrent workers, mixed authenticated GET and same-origin POST plus refused requests, "+
		"two phases of %v each; gateway, Redis session store (shared, cache on), upstream and client on one machine "+
		"(%d CPUs, %s, race detector %v).\n\n", loadSessions, minted.Round(time.Millisecond), loadWorkers, d,
		runtime.GOMAXPROCS(0), runtime.Version(), map[bool]string{true: "on", false: "off"}[raceEnabled])
	b.WriteString("| phase | requests | req/s | p50 | p99 | max | goroutines after (+ idle keep-alive) | heap in use after |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i, r := range res {
		fmt.Fprintf(&b, "| %d | %d | %.0f | %v | %v | %v | %d (+%d) | %.1f MiB |\n", i+1, r.requests, r.rate,
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.max.Round(time.Millisecond),
			r.goroutines, r.idleConns, float64(r.heap)/mib)
	}
	return b.String()
}
