// Package ops is authgate's ops listener: liveness (/healthz), readiness (/readyz),
// Prometheus metrics (/metrics), a bearer-protected JSON API to look up and revoke sessions
// and to look up, disable and enable users (/api/), and an operator page (/) that drives that
// API from a browser.
//
// The caller builds the handler once with New and serves it on its own listener
// (admin.listen), never on the public one: /healthz, /readyz, /metrics and the page itself are
// not authenticated, only /api/ is. The caller must keep that listener on loopback or an
// internal network, give it an http.Server with timeouts, and pass a long random token.
//
// Responses never carry a session id, a cookie value or a token: sessions are named by their
// handle (a one-way hash of the id) and built from a dedicated response type.
package ops

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// Limits of the ops listener.
const (
	// MinTokenLength is the shortest bearer token New accepts.
	MinTokenLength = 16
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout = 2 * time.Second
	// MaxBodyBytes bounds a request body of the API.
	MaxBodyBytes = 64 << 10
	// DefaultListLimit and MaxListLimit bound the `limit` query parameter of list calls.
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// SessionStore is what the ops API needs of the session store; *session.Store satisfies it.
// Errors wrapping session.ErrNotFound become 404, session.ErrUnavailable 503. Records
// returned by Lookup may hold tokens: the API never shows them. The sessions of a user are
// those of its IdP identity (issuer, subject), which the API reads from UserStore.
type SessionStore interface {
	Lookup(ctx context.Context, handle string) (*session.Record, error)
	Revoke(ctx context.Context, handle string) error
	RevokeSubject(ctx context.Context, issuer, subject string) (int, error)
	ListSubject(ctx context.Context, issuer, subject string) ([]*session.Record, error)
	List(ctx context.Context, limit int) ([]*session.Record, error)
}

// UserStore is what the ops API needs of the user store; *users.Store satisfies it.
// Errors wrapping users.ErrNotFound become 404, users.ErrUnavailable 503. Audit must not
// block.
type UserStore interface {
	Get(ctx context.Context, id string) (users.User, error)
	FindByEmail(ctx context.Context, email string, limit int) ([]users.User, error)
	List(ctx context.Context, limit int) ([]users.User, error)
	SetDisabled(ctx context.Context, id string, disabled bool) (users.User, error)
	Audit(e users.Event)
}

// Observer receives what the ops API counts (revocations and store failures), so they show
// in the same metrics as the gateway's; *metrics.Metrics satisfies it. Methods must be cheap
// and safe for concurrent use; reason and store are short fixed words.
type Observer interface {
	ObserveRevocation(reason string, n int)
	ObserveStoreError(store string)
}

// Options configures New. Sessions, Users and Token are required.
type Options struct {
	Sessions SessionStore
	Users    UserStore
	// Token is the bearer token of /api/ (at least MinTokenLength characters). It is compared
	// in constant time and never logged.
	Token string
	// Ready holds the named readiness checks of /readyz (e.g. "redis", "database", "idp").
	// Each runs with a ReadyTimeout deadline, all of them in parallel. None: /readyz is 200.
	Ready map[string]func(ctx context.Context) error
	// Metrics is served at /metrics (e.g. promhttp.HandlerFor(registry, ...)); nil answers 404.
	Metrics http.Handler
	// Observer counts revocations made through the API ("ops_revoke", "ops_revoke_user",
	// "user_disabled") and store failures ("sessions", "users"). Optional.
	Observer Observer
	Logger   *slog.Logger     // default discards
	Now      func() time.Time // default time.Now; stamps audit events
}

// server holds the immutable state of one ops handler.
type server struct {
	sessions     SessionStore
	users        UserStore
	tokenHash    [sha256.Size]byte
	ready        map[string]func(ctx context.Context) error
	readyTimeout time.Duration
	metrics      http.Handler
	obs          Observer
	log          *slog.Logger
	now          func() time.Time
	assets       map[string]asset
}

// New validates opts and returns the handler of the ops listener. The caller serves it on
// admin.listen (never the public listener) with an http.Server that has timeouts.
func New(opts Options) (http.Handler, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	return s.routes(), nil
}

func newServer(opts Options) (*server, error) {
	switch {
	case opts.Sessions == nil:
		return nil, errors.New("ops: Options.Sessions is required")
	case opts.Users == nil:
		return nil, errors.New("ops: Options.Users is required")
	case len(opts.Token) < MinTokenLength:
		return nil, errors.New("ops: Options.Token must be at least 16 characters")
	}
	ready := make(map[string]func(ctx context.Context) error, len(opts.Ready))
	for name, check := range opts.Ready {
		if name == "" || check == nil {
			return nil, errors.New("ops: Options.Ready needs a name and a function for every check")
		}
		ready[name] = check
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &server{
		sessions:     opts.Sessions,
		users:        opts.Users,
		tokenHash:    sha256.Sum256([]byte(opts.Token)),
		ready:        ready,
		readyTimeout: ReadyTimeout,
		metrics:      opts.Metrics,
		obs:          opts.Observer,
		log:          opts.Logger,
		now:          opts.Now,
		assets:       assets,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s, nil
}

// routes lists every endpoint of the ops listener. Only /api/ is behind the bearer token;
// every response gets the headers of secureHeaders.
func (s *server) routes() http.Handler {
	api := http.NewServeMux()
	api.Handle("GET /api/sessions", s.handle(s.listSessions))
	api.Handle("GET /api/sessions/{handle}", s.handle(s.getSession))
	api.Handle("DELETE /api/sessions/{handle}", s.handle(s.revokeSession))
	api.Handle("DELETE /api/users/{user_id}/sessions", s.handle(s.revokeUserSessions))
	api.Handle("GET /api/users", s.handle(s.listUsers))
	api.Handle("GET /api/users/{user_id}", s.handle(s.getUser))
	api.Handle("PATCH /api/users/{user_id}", s.handle(s.patchUser))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.Handle("GET /{$}", s.asset("index.html"))
	mux.Handle("GET /ui/app.js", s.asset("app.js"))
	mux.Handle("GET /ui/style.css", s.asset("style.css"))
	mux.Handle("/api/", s.requireToken(api))
	return secureHeaders(mux)
}

// pageCSP allows the page's own script, style and API calls only: no inline script, no
// third-party origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// secureHeaders sets the headers every answer of the ops listener carries: nothing is cached,
// nothing is sniffed or framed, no Referer leaves.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 while the process serves.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) metricsHandler() http.Handler {
	if s.metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "Metrics are not enabled."})
		})
	}
	return s.metrics
}

// nopObserver is the Observer when none is configured.
type nopObserver struct{}

func (nopObserver) ObserveRevocation(string, int) {}
func (nopObserver) ObserveStoreError(string)      {}
