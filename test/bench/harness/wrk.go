package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// wrkDone prints wrk's summary as one JSON line (latencies in µs).
const wrkDone = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d}\n', summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`

// wrkCookies sends each request with a cookie line picked at random from the file given as
// the script's first argument (one "name=value" a line).
const wrkCookies = `
local cookies = {}
function init(args)
  for line in io.lines(args[1]) do cookies[#cookies + 1] = line end
  math.randomseed(os.time())
end
function request()
  return wrk.format(nil, nil, {["Cookie"] = cookies[math.random(#cookies)]})
end
` + wrkDone

// writeWrkScripts writes the two Lua scripts into dir.
func writeWrkScripts(dir string) (summary, cookies string, err error) {
	summary, cookies = filepath.Join(dir, "summary.lua"), filepath.Join(dir, "cookies.lua")
	if err = os.WriteFile(summary, []byte(wrkDone), 0o644); err == nil {
		err = os.WriteFile(cookies, []byte(wrkCookies), 0o644)
	}
	return summary, cookies, err
}

// wrkRun is one wrk invocation.
type wrkRun struct {
	bin, cpus   string
	url         string
	conns       int
	d           time.Duration
	cookie      string // sent on every request, unless cookiesFile is set
	script      string
	cookiesFile string
}

// wrkResult is wrk's summary of one run.
type wrkResult struct {
	Requests     int64 `json:"requests"`
	DurationUS   int64 `json:"duration_us"`
	P50US        int64 `json:"p50_us"`
	P99US        int64 `json:"p99_us"`
	StatusErrors int64 `json:"status_errors"`
	SocketErrors int64 `json:"socket_errors"`

	CPU time.Duration `json:"-"` // wrk's own user+system time
}

func (r wrkResult) rps() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// run executes wrk (one thread: it shares its CPU with nothing else of ours that matters).
func (w wrkRun) run(ctx context.Context) (wrkResult, error) {
	secs := max(1, int(w.d.Round(time.Second)/time.Second))
	args := []string{w.bin, "-t1", "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(secs) + "s",
		"--timeout", "5s", "-s", w.script}
	if w.cookie != "" && w.cookiesFile == "" {
		args = append(args, "-H", "Cookie: "+w.cookie)
	}
	args = append(args, w.url)
	if w.cookiesFile != "" {
		args = append(args, "--", w.cookiesFile)
	}
	argv := command(w.cpus, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, errb.String())
	}
	i := bytes.LastIndex(out.Bytes(), []byte("JSON "))
	if i < 0 {
		return wrkResult{}, fmt.Errorf("wrk printed no summary: %s", out.String())
	}
	line, _, _ := bytes.Cut(out.Bytes()[i+5:], []byte("\n"))
	var r wrkResult
	if err := json.Unmarshal(line, &r); err != nil {
		return wrkResult{}, fmt.Errorf("wrk summary %q: %w", line, err)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("wrk made no requests: %s", out.String())
	}
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}
