package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// sample is one wrk run against one process.
type sample struct {
	mode         string
	round, conns int
	wrk          wrkResult
	cpu          time.Duration // utime+stime of the proxy process during the run
	redisCPU     time.Duration // Redis server CPU during the run (whole server)
	loadCPU      time.Duration // wrk + this process (the upstream) during the run
	newConns     int64         // connections the upstream accepted during the run
	rss, hwm     int64         // VmRSS after the run, VmHWM (peak since start)
	peakRSS      int64         // largest VmRSS sampled during the run (RSS phase)
}

func (s sample) cpuPerReq() float64 { return perReq(s.cpu, s.wrk.Requests) }

func perReq(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// util is the proxy's CPU use as a fraction of one core.
func (s sample) util() float64 { return s.share(s.cpu) }

// share is d as a fraction of one core over the run.
func (s sample) share(d time.Duration) float64 {
	return d.Seconds() / (float64(s.wrk.DurationUS) / 1e6)
}

type loginSample struct {
	loginResult
	gwCPU, idpCPU time.Duration
	selfCPU       time.Duration // the login clients (this process)
	redisCPU      time.Duration
	pgCPU         time.Duration // every postgres process on the machine
	workers       int
	idpAlg        string // devidp's ID token signing algorithm
	placement     string // where devidp and the login clients ran
}

// results is everything a run measured.
type results struct {
	machine      string
	version      string // `authgate version`
	tokenLens    [3]int
	sessions     int
	seedTime     time.Duration
	usedMemDelta int64
	userAgentLen int // of the login copied into the seeded sessions
	census       []keyStats
	throughput   []sample
	latency      []sample
	rss          []sample
	rssHot       int64 // gateway VmRSS after the hot-session warm-up, before any seeded-session traffic
	login        *loginSample
	profiles     []profileRun
}

// machineInfo describes the host: CPUs, model, load.
func machineInfo() string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%d CPUs online, %s, %s; load average at start %s", onlineCPUs(), model,
		runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
}

// onlineCPUs counts the machine's CPUs (runtime.NumCPU sees only this process's affinity).
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

// agg summarises the samples of one mode.
type agg struct {
	n                          int
	rpsMean, rpsMin, rpsMax    float64
	p50, p99, cpu, util, redis float64
	loadUtil, connsPer1k       float64
	requests                   int64
	statusErrors, socketErrors int64
}

func aggregate(ss []sample, mode string) agg {
	a := agg{rpsMin: 1e18}
	var cpu, redis time.Duration
	var conns int64
	for _, s := range ss {
		if s.mode != mode {
			continue
		}
		r := s.wrk.rps()
		a.n++
		a.rpsMean += r
		a.rpsMin, a.rpsMax = min(a.rpsMin, r), max(a.rpsMax, r)
		a.p50 += float64(s.wrk.P50US)
		a.p99 += float64(s.wrk.P99US)
		a.util += s.util()
		a.loadUtil += s.share(s.loadCPU)
		cpu, redis, conns = cpu+s.cpu, redis+s.redisCPU, conns+s.newConns
		a.requests += s.wrk.Requests
		a.statusErrors += s.wrk.StatusErrors
		a.socketErrors += s.wrk.SocketErrors
	}
	if a.n == 0 {
		return a
	}
	n := float64(a.n)
	a.rpsMean, a.p50, a.p99, a.util, a.loadUtil = a.rpsMean/n, a.p50/n, a.p99/n, a.util/n, a.loadUtil/n
	a.cpu, a.redis = perReq(cpu, a.requests), perReq(redis, a.requests)
	a.connsPer1k = float64(conns) * 1000 / float64(a.requests)
	return a
}

// pairedRatios are the per-round throughput ratios of mode to bare (runs adjacent in time).
func pairedRatios(ss []sample, mode string) (lo, hi float64) {
	bare := map[int]float64{}
	for _, s := range ss {
		if s.mode == "bare" {
			bare[s.round] = s.wrk.rps()
		}
	}
	lo, hi = 1e18, 0
	for _, s := range ss {
		if b := bare[s.round]; s.mode == mode && b > 0 {
			r := s.wrk.rps() / b
			lo, hi = min(lo, r), max(hi, r)
		}
	}
	return lo, hi
}

func ms(us float64) string { return fmt.Sprintf("%.3f ms", us/1000) }
