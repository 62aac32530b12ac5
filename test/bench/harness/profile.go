package main

import (
	"bufio"
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
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/assertion"
	agconfig "github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/metrics"
	"github.com/authgate/authgate/session"
	proxyroute "github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// gatewayProfileMain serves the gateway of an authgate.yaml the way cmd/authgate's serve
// wires it (same packages, same options, same http.Server limits), with a CPU profile
// written from start to SIGTERM. cmd/authgate has no profiling endpoint; this is the
// closest profile of the real process. Keep it in step with cmd/authgate/serve.go's build.
// Single Redis server only; no ops listener.
func gatewayProfileMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gateway-profile", flag.ContinueOnError)
	cfgPath := fs.String("config", "authgate.yaml", "config file")
	listen := fs.String("listen", "127.0.0.1:0", "listen address (the config's public_url is kept)")
	out := fs.String("cpuprofile", "cpu.pprof", "CPU profile written at exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := agconfig.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	// Buffered like serve's log writer (cmd/authgate/logwriter.go), and the access lines go to
	// it directly, as serve wires gateway.Options.AccessLog.
	logw := newFlushingWriter(os.Stderr, 100*time.Millisecond)
	defer logw.Close()
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: cfg.Server.SlogLevel()}))
	h, closeAll, err := buildGateway(ctx, cfg, log, logw)
	if err != nil {
		return err
	}
	defer closeAll()
	stop, err := startCPUProfile(*out)
	if err != nil {
		return err
	}
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintln(stdout, "http://"+ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// buildGateway mirrors cmd/authgate's build for a Redis session store.
func buildGateway(ctx context.Context, cfg *agconfig.Config, log *slog.Logger, accessLog io.Writer) (http.Handler, func(), error) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	keys, err := cfg.SecretKeys()
	if err != nil {
		return nil, nil, err
	}
	opt, err := redis.ParseURL(cfg.Session.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, time.Second, time.Second
	rdb := redis.NewClient(opt)
	st, err := session.NewRedis(rdb, session.Options{
		CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain,
		SameSite: cfg.Session.SameSiteMode(), Secure: cfg.Session.Secure, Secrets: keys,
		IdleTimeout: cfg.Session.IdleTimeout, AbsoluteTimeout: cfg.Session.AbsoluteTimeout, Logger: log,
	})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	us, err := users.Open(ctx, users.Options{URL: cfg.Database.URL, Logger: log})
	if err != nil {
		st.Close()
		rdb.Close()
		return nil, nil, err
	}
	closeAll := func() { _ = us.Close(); _ = st.Close(); _ = rdb.Close() }
	signer, err := assertion.NewRedis(rdb, assertion.Options{Secrets: keys, Logger: log})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	routes := make([]gateway.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		target, err := url.Parse(r.Upstream)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		routes[i] = gateway.Route{
			Route: proxyroute.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Target: target,
				StripPrefix: r.StripPrefix, Timeout: r.Timeout},
			Access: gateway.Policy{Public: r.Access.Public, Roles: r.Access.Roles, Groups: r.Access.Groups,
				Emails: r.Access.Emails, EmailDomains: r.Access.EmailDomains},
			Methods: r.Methods, CSRFHeader: r.CSRF == agconfig.CSRFHeader, PassAccessToken: r.PassAccessToken,
			IdentityJWT: r.IdentityJWT,
		}
	}
	g, err := gateway.New(ctx, gateway.Options{
		PublicURL: cfg.Server.PublicURL,
		OIDC: gateway.OIDCOptions{Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
			Scopes: cfg.OIDC.Scopes, AuthParams: cfg.OIDC.AuthParams, RolesClaim: cfg.OIDC.Claims.Roles,
			GroupsClaim: cfg.OIDC.Claims.Groups, PostLogoutRedirect: cfg.OIDC.PostLogoutRedirect},
		CookieName: cfg.Session.CookieName, Secure: cfg.Session.Secure, SameSite: cfg.Session.SameSiteMode(),
		Sessions: st, Users: us, Routes: routes, AllowedOrigins: cfg.CORS.AllowedOrigins,
		TrustedProxies: cfg.Server.TrustedPrefixes(),
		Bearer: gateway.BearerOptions{Enabled: cfg.Bearer.Enabled, Audiences: cfg.BearerAudiences(),
			TrustedIssuers: cfg.Bearer.TrustedIssuers},
		Logger: log, AccessLog: accessLog, Observer: m, Assertions: signer,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return g, closeAll, nil
}

// flushingWriter buffers writes (64 KiB) and flushes them every interval and on Close.
type flushingWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newFlushingWriter(w io.Writer, every time.Duration) *flushingWriter {
	f := &flushingWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				f.mu.Lock()
				_ = f.w.Flush()
				f.mu.Unlock()
			}
		}
	}()
	return f
}

func (f *flushingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

// Close stops the flusher and flushes what is buffered.
func (f *flushingWriter) Close() error {
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Flush()
}
