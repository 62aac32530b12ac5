package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/devidp"
	"github.com/authgate/authgate/test/bench"
)

// upstreamBody is what the upstream answers: 100 bytes.
const upstreamBody = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz!\n"

// upstream is the app behind both proxies. It counts the connections proxies open to it.
type upstream struct {
	url      string
	close    func() error
	newConns atomic.Int64
}

// startUpstream starts the upstream: kind "raw" (default) answers from a minimal HTTP/1.1
// loop, "net" from net/http. Both send the same 100-byte answer with keep-alive.
func startUpstream(kind string) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{url: "http://" + ln.Addr().String(), close: ln.Close}
	switch kind {
	case "raw":
		go u.acceptRaw(ln)
		return u, nil
	case "net":
	default:
		ln.Close()
		return nil, fmt.Errorf("-upstream %q: want raw or net", kind)
	}
	body := []byte(upstreamBody)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.newConns.Add(1)
			}
		},
	}
	u.close = srv.Close
	go func() { _ = srv.Serve(ln) }()
	return u, nil
}

// rawResponse is the raw upstream's answer to every request.
const rawResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 100\r\n\r\n" + upstreamBody

// acceptRaw serves connections until ln is closed.
func (u *upstream) acceptRaw(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u.newConns.Add(1)
		go serveRaw(c)
	}
}

// serveRaw answers each request on c with rawResponse. It only looks for the blank line that
// ends a header block: the proxies send GETs without a body. A fraction of net/http's cost,
// so the load side's CPU does not limit the proxies.
func serveRaw(c net.Conn) {
	defer c.Close()
	resp, end := []byte(rawResponse), []byte("\r\n\r\n")
	buf := make([]byte, 16<<10)
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], end)
			if i < 0 {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[i+len(end):n])
		}
	}
}

// serveUntil serves h on a new loopback listener, prints its address on stdout, and shuts
// down when ctx ends.
func serveUntil(ctx context.Context, h http.Handler, stdout io.Writer, addrLine func(string) string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintln(stdout, addrLine(ln.Addr().String()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// bareProxyMain is the baseline process: bench.BareProxy over bench.TunedTransport; with
// -identity-headers the reference that also sends authgate's identity headers.
func bareProxyMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	up := fs.String("upstream", "", "upstream URL")
	idle := fs.Int("idle", 64, "MaxIdleConnsPerHost (size it to the concurrency)")
	prof := fs.String("cpuprofile", "", "write a CPU profile from start to SIGTERM")
	ident := fs.Bool("identity-headers", false, "also set the headers authgate adds for a session (bench.IdentityHeaders)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var add http.Header
	if *ident {
		add = bench.IdentityHeaders()
	}
	if *prof != "" {
		stop, err := startCPUProfile(*prof)
		if err != nil {
			return err
		}
		defer stop()
	}
	target, err := url.Parse(*up)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream: %q is not a URL", *up)
	}
	return serveUntil(ctx, bench.BareProxy(target, bench.TunedTransport(*idle), add), stdout,
		func(addr string) string { return "http://" + addr })
}

// devidpMain is the IdP process: devidp with the demo users plus -users generated ones
// (user<i> / pw<i>), client "authgate" with the secret from $BENCH_CLIENT_SECRET.
func devidpMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	n := fs.Int("users", 1000, "generated users")
	alg := fs.String("alg", "RS256", "ID token signing algorithm: RS256 or ES256")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	users := devidp.DemoUsers()
	for i := range *n {
		users = append(users, devidp.User{ID: fmt.Sprintf("bench-%d", i), Username: fmt.Sprintf("user%d", i),
			Password: fmt.Sprintf("pw%d", i), Email: fmt.Sprintf("user%d@example.com", i), EmailVerified: true,
			Name: fmt.Sprintf("Bench User %d", i), Roles: []string{"viewer"}, Groups: []string{"staff"}})
	}
	p, err := devidp.New(devidp.Options{
		Issuer: issuer, Users: users, SigningAlgorithm: *alg,
		Clients: []devidp.Client{{ID: "authgate", Secret: os.Getenv("BENCH_CLIENT_SECRET"),
			RedirectURIs: []string{"http://127.0.0.1:*/.auth/callback"}}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintln(stdout, issuer)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}
