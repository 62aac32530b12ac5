package main

import (
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
	srv      *http.Server
	newConns atomic.Int64
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{url: "http://" + ln.Addr().String()}
	body := []byte(upstreamBody)
	u.srv = &http.Server{
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
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
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

// bareProxyMain is the baseline process: bench.BareProxy over bench.TunedTransport.
func bareProxyMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	up := fs.String("upstream", "", "upstream URL")
	idle := fs.Int("idle", 64, "MaxIdleConnsPerHost (size it to the concurrency)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*up)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream: %q is not a URL", *up)
	}
	return serveUntil(ctx, bench.BareProxy(target, bench.TunedTransport(*idle)), stdout,
		func(addr string) string { return "http://" + addr })
}

// devidpMain is the IdP process: devidp with the demo users plus -users generated ones
// (user<i> / pw<i>), client "authgate" with the secret from $BENCH_CLIENT_SECRET.
func devidpMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	n := fs.Int("users", 1000, "generated users")
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
		Issuer: issuer, Users: users,
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
