package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/assertion"
	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/metrics"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// app is a wired gateway and the stores it owns.
type app struct {
	gw       *gateway.Gateway
	handler  http.Handler // what the main listener serves: gw, or gw behind the demo's mux
	sessions *session.Store
	users    *users.Store
	redis    redis.UniversalClient
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	log      *slog.Logger
}

// newLogger is the process logger: JSON lines on w at the configured level.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// build wires every package from the configuration. accessLog, when not nil, is the writer
// under log's handler: the gateway then writes its access lines to it directly (the same JSON
// lines, without slog's generic encoding; see gateway.Options.AccessLog).
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, accessLog io.Writer) (*app, error) {
	a := &app{log: log, registry: prometheus.NewRegistry()}
	a.metrics = metrics.New(a.registry)
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	keys, err := cfg.SecretKeys()
	if err != nil {
		return nil, err
	}
	sopts := session.Options{
		CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain,
		SameSite: cfg.Session.SameSiteMode(), Secure: cfg.Session.Secure, Secrets: keys,
		IdleTimeout: cfg.Session.IdleTimeout, AbsoluteTimeout: cfg.Session.AbsoluteTimeout, Logger: log,
	}
	if cfg.Session.Store == "memory" {
		a.sessions, err = session.NewMemory(sopts)
	} else {
		a.redis, err = newRedis(cfg.Session)
		if err == nil {
			a.sessions, err = session.NewRedis(a.redis, sopts)
		}
	}
	if err != nil {
		a.close()
		return nil, fmt.Errorf("session store: %w", err)
	}
	a.users, err = users.Open(ctx, users.Options{URL: cfg.Database.URL, Logger: log,
		AuditRetention: cfg.Database.AuditRetention})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("user store: %w", err)
	}
	routes, err := gatewayRoutes(cfg.Routes)
	if err != nil {
		a.close()
		return nil, err
	}
	signer, err := newAssertions(a.redis, keys, log)
	if err != nil {
		a.close()
		return nil, err
	}
	a.gw, err = gateway.New(ctx, gateway.Options{
		PublicURL: cfg.Server.PublicURL,
		OIDC: gateway.OIDCOptions{
			Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
			Scopes: cfg.OIDC.Scopes, AuthParams: cfg.OIDC.AuthParams,
			RolesClaim: cfg.OIDC.Claims.Roles, GroupsClaim: cfg.OIDC.Claims.Groups,
			PostLogoutRedirect: cfg.OIDC.PostLogoutRedirect,
		},
		CookieName: cfg.Session.CookieName, Secure: cfg.Session.Secure, SameSite: cfg.Session.SameSiteMode(),
		Sessions: a.sessions, Users: a.users, Routes: routes,
		AllowedOrigins: cfg.CORS.AllowedOrigins, TrustedProxies: cfg.Server.TrustedPrefixes(),
		Bearer: gateway.BearerOptions{Enabled: cfg.Bearer.Enabled, Audiences: cfg.BearerAudiences(),
			TrustedIssuers: cfg.Bearer.TrustedIssuers},
		Logger: log, AccessLog: accessLog, Observer: a.metrics, Assertions: signer,
		LoginRateLimit: cfg.Server.LoginRateLimit, LoginFlowsPerBrowser: gateway.DefaultLoginFlowsPerBrowser,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.handler = a.gw
	return a, nil
}

// newAssertions is the signer of X-Auth-Identity: its keys live in the session Redis, shared by
// every instance, or in memory with the memory session store. They are sealed with the session
// secrets.
func newAssertions(rdb redis.UniversalClient, secrets [][]byte, log *slog.Logger) (*assertion.Signer, error) {
	o := assertion.Options{Secrets: secrets, Logger: log}
	if rdb == nil {
		return assertion.NewMemory(o)
	}
	return assertion.NewRedis(rdb, o)
}

// newRedis opens a go-redis client for session.redis_url: a single server, a Sentinel set
// (?master_name=) or a Cluster (?addr= seeds), with short timeouts so that a Redis outage
// answers 503 quickly instead of holding requests.
func newRedis(sc config.Session) (redis.UniversalClient, error) {
	const dial, rw = 2 * time.Second, time.Second
	switch sc.RedisMode() {
	case config.RedisSentinel:
		opt, err := redis.ParseFailoverURL(sc.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("session.redis_url: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dial, rw, rw
		return redis.NewFailoverClient(opt), nil
	case config.RedisCluster:
		opt, err := redis.ParseClusterURL(sc.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("session.redis_url: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dial, rw, rw
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(sc.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("session.redis_url: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dial, rw, rw
	return redis.NewClient(opt), nil
}

// gatewayRoutes turns the configured routes into the gateway's.
func gatewayRoutes(in []config.Route) ([]gateway.Route, error) {
	out := make([]gateway.Route, len(in))
	for i, r := range in {
		target, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].upstream: %w", i, err)
		}
		out[i] = gateway.Route{
			Route: upstream.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Target: target,
				StripPrefix: r.StripPrefix, Timeout: r.Timeout},
			Access: gateway.Policy{Public: r.Access.Public, Roles: r.Access.Roles, Groups: r.Access.Groups,
				Emails: r.Access.Emails, EmailDomains: r.Access.EmailDomains},
			Methods: r.Methods, CSRFHeader: r.CSRF == config.CSRFHeader, PassAccessToken: r.PassAccessToken,
			IdentityJWT: r.IdentityJWT,
		}
	}
	return out, nil
}

// close releases what build opened; the audit queue is flushed by users.Store.Close.
func (a *app) close() {
	if a.users != nil {
		if err := a.users.Close(); err != nil {
			a.log.Warn("closing user store", "err", err)
		}
	}
	if a.sessions != nil {
		_ = a.sessions.Close() // the session cache's invalidation subscription
	}
	if a.redis != nil {
		_ = a.redis.Close()
	}
}

// migrateOnStart applies migrations when database.auto_migrate is set. A database that is down
// at start does not stop the gateway (existing sessions keep working); migrations are retried
// in the background until they succeed.
func (a *app) migrateOnStart(ctx context.Context) {
	try := func() error {
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return a.users.Migrate(mctx)
	}
	if err := try(); err == nil {
		return
	} else {
		a.log.Error("database migration failed; retrying in the background", "err", err)
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := try(); err == nil {
					a.log.Info("database migration applied")
					return
				}
			}
		}
	}()
}

// serve runs the gateway until ctx is cancelled, then shuts down gracefully.
func serve(ctx context.Context, path string, environ []string, stderr io.Writer) error {
	cfg, err := config.Load(path, environ)
	if err != nil {
		printConfigErrors(stderr, err)
		return usageError{err}
	}
	lw := newLogWriter(stderr, 100*time.Millisecond)
	defer lw.Close()
	log := newLogger(lw, cfg.Server.SlogLevel())
	for _, name := range config.UnusedEnv(environ) {
		log.Warn("environment variable matches no configuration key", "name", name)
	}
	a, err := build(ctx, cfg, log, lw)
	if err != nil {
		return err
	}
	defer a.close()
	if cfg.Database.AutoMigrate {
		a.migrateOnStart(ctx)
	}
	return a.listenAndServe(ctx, cfg.Server, cfg.Admin)
}

// listenAndServe serves the main and ops listeners until ctx ends, then drains them within
// server.shutdown_grace.
func (a *app) listenAndServe(ctx context.Context, sc config.Server, ac config.Admin) error {
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	return a.serveOn(ctx, ln, sc, ac)
}

// serveOn serves the main listener on ln and the ops listener on admin.listen.
func (a *app) serveOn(ctx context.Context, ln net.Listener, sc config.Server, ac config.Admin) error {
	mainSrv := newServer(a.handler, a.log)
	servers := []*http.Server{mainSrv}
	errc := make(chan error, 2)
	go func() {
		if sc.TLSCertFile != "" {
			errc <- mainSrv.ServeTLS(ln, sc.TLSCertFile, sc.TLSKeyFile)
		} else {
			errc <- mainSrv.Serve(ln)
		}
	}()
	a.log.Info("authgate listening", "addr", ln.Addr().String())
	if ac.Listen != "" {
		opsLn, err := net.Listen("tcp", ac.Listen)
		if err != nil {
			_ = mainSrv.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
		h, err := a.opsHandler(ac.Token)
		if err != nil {
			_ = mainSrv.Close()
			_ = opsLn.Close()
			return fmt.Errorf("admin: %w", err)
		}
		opsSrv := newServer(h, a.log)
		servers = append(servers, opsSrv)
		go func() { errc <- opsSrv.Serve(opsLn) }()
		a.log.Info("ops listener", "addr", opsLn.Addr().String())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	grace := sc.ShutdownGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			a.log.Warn("shutdown", "err", err)
		}
	}
	a.log.Info("authgate stopped")
	return nil
}

// newServer is an http.Server with the limits an edge server needs (slowloris, huge headers).
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// printConfigErrors prints every configuration problem, one a line.
func printConfigErrors(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, line)
		}
	}
}

// checkConfig validates a configuration file: exit 0, or every problem and exit 1.
func checkConfig(path string, environ []string, stdout, stderr io.Writer) error {
	if _, err := config.Load(path, environ); err != nil {
		printConfigErrors(stderr, err)
		return usageError{err}
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// migrate applies the embedded migrations and exits.
func migrate(ctx context.Context, path string, environ []string, stdout io.Writer) error {
	cfg, err := config.Load(path, environ)
	if err != nil {
		return err
	}
	st, err := users.Open(ctx, users.Options{URL: cfg.Database.URL})
	if err != nil {
		return err
	}
	defer st.Close()
	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := st.Migrate(mctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
