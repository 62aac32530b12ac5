package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux ABI Go
// supports).
const clkTck = 100

// proc is a child process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// command builds argv, prefixed with `taskset -c cpus` when cpus is set (taskset execs, so
// the pid is the program's own).
func command(cpus string, argv ...string) []string {
	if cpus == "" {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

// startProc starts argv with stderr to <out>/<name>.log and returns it with a reader of its
// stdout. extraEnv is added to the harness's environment.
func startProc(name, out string, argv []string, extraEnv []string) (*proc, *bufio.Reader, error) {
	// O_APPEND, so the harness can truncate a long log while the child writes it.
	logf, err := os.OpenFile(filepath.Join(out, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, bufio.NewReader(stdout), nil
}

// readLine reads the first stdout line of a child (its listen address), within 15s.
func (p *proc) readLine(r *bufio.Reader) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
		_, _ = io.Copy(io.Discard, r) // keep the pipe drained
	}()
	select {
	case v := <-ch:
		if v.err != nil {
			return "", fmt.Errorf("%s: reading its address: %w (see %s.log)", p.name, v.err, p.name)
		}
		return v.s, nil
	case <-p.done:
		return "", fmt.Errorf("%s exited: %v (see %s.log)", p.name, p.err, p.name)
	case <-time.After(15 * time.Second):
		return "", fmt.Errorf("%s: no address after 15s", p.name)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to this child (by its pid) and waits up to 10s, then kills it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// alive reports an error when the child has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (see %s.log)", p.name, p.err, p.name)
	default:
		return nil
	}
}

// cpuTime is utime+stime of pid (all its threads) from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) { return procCPU(pid, false) }

// procCPU is utime+stime of pid, plus cutime+cstime (its ended and reaped children) with
// children.
func procCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that ends comm: state is field 3, utime 14, stime 15, cutime 16,
	// cstime 17.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, errors.New("malformed stat")
	}
	n := 2
	if children {
		n = 4
	}
	var ticks int64
	for _, v := range f[11 : 11+n] {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / clkTck, nil
}

// memStatus returns VmRSS and VmHWM (peak RSS) of pid in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// sampleRSS records the largest VmRSS of pid every 200ms until ctx ends.
func sampleRSS(ctx context.Context, pid int) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := memStatus(pid); err == nil && rss > peak {
				peak = rss
			}
			select {
			case <-ctx.Done():
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// commCPU is the summed utime+stime of every process named comm (e.g. the postgres server and
// its backends, whoever they serve), plus their reaped children's: a backend that ends in
// between (a closed connection) is counted through the postmaster that reaped it.
func commCPU(comm string) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if d, err := procCPU(pid, true); err == nil {
			total += d
		}
	}
	return total
}
