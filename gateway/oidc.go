package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discoveryRetry is how long a failed discovery is remembered before the next attempt.
const discoveryRetry = 2 * time.Second

// idpIdleConns is the keep-alive pool per IdP host of the default IdP client. With
// http.DefaultTransport's 2, concurrent logins opened (and closed) a TCP (and TLS) connection
// for almost every token exchange.
const idpIdleConns = 64

// newIdPClient is the default Options.HTTPClient: a 10 s timeout and its own transport (proxy
// settings from the environment, as http.DefaultTransport) with a pool sized for concurrent logins.
func newIdPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idpIdleConns
	return &http.Client{Timeout: idpTimeout, Transport: t}
}

// provider is the configured IdP, discovered lazily so that the gateway starts (and keeps
// serving existing sessions) while the IdP is unreachable, and recovers by itself.
type provider struct {
	opts     OIDCOptions
	callback string
	client   *http.Client
	baseCtx  context.Context
	log      *slog.Logger

	ready atomic.Pointer[discovered]
	mu    sync.Mutex
	lastF time.Time // last failed discovery
	lastE error
}

// discovered holds what discovery yields; immutable once built.
type discovered struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
}

func newProvider(ctx context.Context, opts OIDCOptions, callback string, client *http.Client, log *slog.Logger) *provider {
	return &provider{opts: opts, callback: callback, client: client, baseCtx: ctx, log: log}
}

// errIdPUnavailable marks failures to reach the IdP (answered with 502/503).
var errIdPUnavailable = errors.New("identity provider unavailable")

// get returns the discovered provider, running discovery if it has not succeeded yet.
func (p *provider) get() (*discovered, error) {
	if d := p.ready.Load(); d != nil {
		return d, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.ready.Load(); d != nil {
		return d, nil
	}
	if time.Since(p.lastF) < discoveryRetry {
		return nil, p.lastE
	}
	d, err := p.discover()
	if err != nil {
		p.lastF, p.lastE = time.Now(), fmt.Errorf("%w: %w", errIdPUnavailable, err)
		p.log.Warn("oidc discovery failed", "issuer", p.opts.Issuer, "err", err)
		return nil, p.lastE
	}
	p.ready.Store(d)
	return d, nil
}

// discover runs OIDC discovery. go-oidc keeps the context it is given for later key-set
// fetches, so it gets the gateway's long-lived context; the HTTP client's timeout bounds the call.
func (p *provider) discover() (*discovered, error) {
	pr, err := oidc.NewProvider(oidc.ClientContext(p.baseCtx, p.client), p.opts.Issuer)
	if err != nil {
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := pr.Claims(&extra); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return &discovered{
		oauth: oauth2.Config{
			ClientID:     p.opts.ClientID,
			ClientSecret: p.opts.ClientSecret,
			Endpoint:     inHeader(pr.Endpoint()),
			RedirectURL:  p.callback,
			Scopes:       p.opts.Scopes,
		},
		verifier:   pr.Verifier(&oidc.Config{ClientID: p.opts.ClientID}),
		endSession: extra.EndSession,
	}, nil
}

// ping reports whether discovery has succeeded or succeeds now (for readiness checks).
func (p *provider) ping() error {
	_, err := p.get()
	return err
}

// PingIdP reports whether the IdP's discovery has succeeded (running it if needed).
func (g *Gateway) PingIdP() error { return g.idp.ping() }

// inHeader pins client authentication to client_secret_basic: with auto-detection, x/oauth2
// retries a failed token request with the secret in the body, presenting a code or a rotating
// refresh token twice.
func inHeader(e oauth2.Endpoint) oauth2.Endpoint {
	e.AuthStyle = oauth2.AuthStyleInHeader
	return e
}
