package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/devidp"
)

// demo runs the whole flow on one machine with nothing installed: the development OIDC
// provider (mounted under /idp on the same listener), in-memory sessions (or --redis-url), a
// SQLite user store (or --database-url), and two demo upstreams that show the identity headers
// they receive. Loopback only.
func demo(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address of the demo gateway")
	redisURL := fs.String("redis-url", "", "use this Redis for sessions instead of memory (redis://127.0.0.1:6379/0)")
	dbURL := fs.String("database-url", "", "use this user store instead of a temporary SQLite file (postgres://... or sqlite:PATH)")
	opsListen := fs.String("ops-listen", "", "also serve the ops listener here (loopback), with a token printed at start")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if err := loopbackOnly(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if *opsListen != "" {
		if err := loopbackOnly(*opsListen); err != nil {
			return fmt.Errorf("--ops-listen: %w", err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	tmp, err := os.MkdirTemp("", "authgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	log := newLogger(stderr, levelFromEnv(environ))
	secret := randomSecret()
	idp, err := devidp.New(devidp.Options{
		Issuer: base + "/idp",
		Clients: []devidp.Client{{ID: "authgate-demo", Secret: secret,
			RedirectURIs: []string{base + "/.auth/callback"}, PostLogoutRedirectURIs: []string{base + "/"}}},
		Logger: log.With("component", "devidp"),
	})
	if err != nil {
		return err
	}
	dashboard, err := serveDemoUpstream("Dashboard", "#2f5bea")
	if err != nil {
		return err
	}
	defer dashboard.Close()
	admin, err := serveDemoUpstream("Admin console", "#b4232c")
	if err != nil {
		return err
	}
	defer admin.Close()

	cfg := demoConfig(base, secret, dashboard.URL, admin.URL, *redisURL, *dbURL, tmp, *opsListen)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	a, err := build(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.users.Migrate(ctx); err != nil {
		return fmt.Errorf("demo user store: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", idp.Handler())
	mux.Handle("/", a.handler)
	a.handler = mux
	printDemoBanner(stdout, base, cfg.Admin)
	return a.serveOn(ctx, ln, cfg.Server, cfg.Admin)
}

// demoConfig is the configuration of the demo: the same keys a user would write.
func demoConfig(base, clientSecret, dashboard, admin, redisURL, dbURL, tmp, opsListen string) *config.Config {
	cfg := config.Default()
	cfg.Server.Listen = strings.TrimPrefix(base, "http://")
	cfg.Server.PublicURL = base
	cfg.Server.ShutdownGrace = 3 * time.Second
	cfg.OIDC.Issuer = base + "/idp"
	cfg.OIDC.ClientID = "authgate-demo"
	cfg.OIDC.ClientSecret = clientSecret
	cfg.Session.Store = config.StoreMemory
	if redisURL != "" {
		cfg.Session.Store, cfg.Session.RedisURL = config.StoreRedis, redisURL
	}
	cfg.Session.CookieName = "authgate_demo"
	cfg.Session.Secure = false // plain http on loopback; production runs behind https
	cfg.Session.Secrets = []string{randomSecret()}
	cfg.Database.URL = "sqlite:" + filepath.Join(tmp, "users.db")
	if dbURL != "" {
		cfg.Database.URL = dbURL
	}
	adminRoute := config.DefaultRoute()
	adminRoute.Name, adminRoute.PathPrefix, adminRoute.Upstream = "admin", "/admin/", admin
	adminRoute.Access = config.Access{Roles: []string{"super_admin"}}
	dash := config.DefaultRoute()
	dash.Name, dash.PathPrefix, dash.Upstream = "dashboard", "/", dashboard
	cfg.Routes = []config.Route{adminRoute, dash}
	cfg.Admin.Listen = opsListen
	if opsListen != "" {
		cfg.Admin.Token = randomSecret()
	}
	return cfg
}

func printDemoBanner(w io.Writer, base string, ops config.Admin) {
	fmt.Fprintf(w, `
  ┌──────────────────────────────────────────────────────────────────┐
  │  authgate demo: FOR TRYING AUTHGATE ONLY. NOT FOR PRODUCTION.    │
  │  Built-in test identity provider, throw-away keys and users.     │
  └──────────────────────────────────────────────────────────────────┘

  Open        %s/
  Log in as   alice / alice   (role super_admin: may open %s/admin/)
              bob   / bob     (role viewer: /admin/ answers 403)
  Identity    %s/.auth/me
  Log out     %s/.auth/logout
`, base, base, base, base)
	if ops.Listen != "" {
		fmt.Fprintf(w, "  Ops         http://%s/   token: %s\n", ops.Listen, ops.Token)
	}
	fmt.Fprintln(w, "\n  Ctrl-C stops everything.")
}

// loopbackOnly refuses a listen address that is not on a loopback interface.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("the demo listens on loopback only (127.0.0.1, ::1), not %q", host)
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// levelFromEnv reads AUTHGATE_LOG_LEVEL (default warn: the demo's own banner is the output).
func levelFromEnv(environ []string) slog.Level {
	l := slog.LevelWarn
	if v := lookupEnv(environ, "AUTHGATE_LOG_LEVEL"); v != "" {
		_ = l.UnmarshalText([]byte(v))
	}
	return l
}

// demoUpstream is a small app behind the gateway that shows what it received.
type demoUpstream struct {
	URL string
	srv *http.Server
}

func (d *demoUpstream) Close() { _ = d.srv.Close() }

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{.Title}} · authgate demo</title><style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:46rem;color:#1d2433}
h1{color:{{.Color}}}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;font-family:ui-monospace,monospace;font-size:.9rem}
nav a,nav button{margin-right:1rem}button{font:inherit}</style></head><body>
<h1 id="title">{{.Title}}</h1>
<p>This page is a demo upstream behind authgate. These are the identity headers it received:</p>
<table id="headers"><tr><th>header</th><th>value</th></tr>{{range .Headers}}<tr><td>{{.Name}}</td><td id="{{.Name}}">{{.Value}}</td></tr>{{end}}</table>
<p>Path: <code id="path">{{.Path}}</code></p>
<nav><a href="/">Dashboard</a><a href="/admin/">Admin console</a><a href="/.auth/me">/.auth/me</a>
<form method="post" action="/.auth/logout" style="display:inline"><button id="logout" type="submit">Log out</button></form></nav>
</body></html>`))

type headerRow struct{ Name, Value string }

// serveDemoUpstream starts a demo app on a random loopback port.
func serveDemoUpstream(title, color string) (*demoUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rows []headerRow
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Auth-") {
				rows = append(rows, headerRow{k, strings.Join(v, ", ")})
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = demoPage.Execute(w, map[string]any{"Title": title, "Color": template.CSS(color), "Headers": rows, "Path": r.URL.Path})
	})
	d := &demoUpstream{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}
