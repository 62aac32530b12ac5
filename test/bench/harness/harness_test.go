package main

import (
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestKeyKind(t *testing.T) {
	tests := []struct{ key, want string }{
		{key: "authgate:s:{abc}", want: "authgate:s:"},
		{key: "authgate:sid:{h}", want: "authgate:sid:"},
		{key: "plain", want: "plain"},
	}
	for _, tt := range tests {
		if got := keyKind(tt.key); got != tt.want {
			t.Errorf("keyKind(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// TestRawUpstream: the raw upstream answers every request of a kept-alive connection with the
// 100-byte body and counts one connection for all of them.
func TestRawUpstream(t *testing.T) {
	u, err := startUpstream("raw")
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 3 {
		resp, err := client.Get(u.url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != upstreamBody {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := u.newConns.Load(); n != 1 {
		t.Errorf("3 keep-alive requests opened %d connections, want 1", n)
	}
}

func TestProcStats(t *testing.T) {
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatalf("cpuTime: %v", err)
	}
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("memStatus = %d, %d, %v; want 0 < rss <= hwm", rss, hwm, err)
	}
}

// TestAggregate: per-mode means, CPU per request over all rounds, paired per-round ratios.
func TestAggregate(t *testing.T) {
	run := func(mode string, round int, reqs int64, cpu time.Duration) sample {
		return sample{mode: mode, round: round, cpu: cpu, wrk: wrkResult{Requests: reqs, DurationUS: 1e6}}
	}
	ss := []sample{
		run("bare", 0, 1000, 50*time.Millisecond), run("authgate", 0, 800, 80*time.Millisecond),
		run("bare", 1, 1200, 60*time.Millisecond), run("authgate", 1, 600, 60*time.Millisecond),
	}
	a := aggregate(ss, "authgate")
	if a.n != 2 || a.rpsMean != 700 || a.rpsMin != 600 || a.rpsMax != 800 || a.cpu != 100 {
		t.Errorf("aggregate = %+v; want n 2, mean 700, 600–800, 100 µs/req", a)
	}
	lo, hi := pairedRatios(ss, "authgate")
	if lo != 0.5 || hi != 0.8 {
		t.Errorf("pairedRatios = %v, %v; want 0.5, 0.8", lo, hi)
	}
}
