package gateway

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/upstream"
)

// ServeHTTP serves the main listener through the middleware stack (see stack).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.handler.ServeHTTP(w, r)
}

// stack composes the middleware of the main listener, outermost first: request id, access
// log and metrics (observe), then dispatch.
func (g *Gateway) stack() http.Handler {
	return g.observe(http.HandlerFunc(g.dispatch))
}

// dispatch is the whole request path of the main listener, top to bottom:
//
//  1. refuse method spellings the upstream could read differently ("get", "GeT");
//  2. normalise the path ONCE (upstream.NormalizePath); the clean path is used for dispatch,
//     route matching, policy and forwarding alike;
//  3. /.auth/... goes to the gateway's own endpoints (authRoutes);
//  4. everything else goes through forward: route, method, CORS, session, CSRF, policy, proxy.
//
// dispatch sets r.URL.Path to the clean path (and clears RawPath) before dispatching.
func (g *Gateway) dispatch(w http.ResponseWriter, r *http.Request) {
	if !validMethod(r.Method) {
		g.writeError(w, r, fail(http.StatusBadRequest, "bad_method", "The request method is not supported.", nil))
		return
	}
	clean, err := upstream.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		g.writeError(w, r, fail(http.StatusBadRequest, "bad_path", "The request path is not allowed.", err))
		return
	}
	r.URL.Path, r.URL.RawPath = clean, ""
	if isAuthPath(clean) {
		noteRoute(w, "auth")
		g.auth.ServeHTTP(w, r)
		return
	}
	if err := g.forward(w, r); err != nil {
		g.writeError(w, r, err)
	}
}

// authRoutes lists every endpoint the gateway serves itself.
func (g *Gateway) authRoutes() http.Handler {
	mux := http.NewServeMux()
	limit := g.rateLimit() // per-IP limit of the login endpoints (ratelimit.go)
	mux.Handle("GET /.auth/login", limit(g.handle(g.login)))
	mux.Handle("GET /.auth/callback", limit(g.handle(g.callback)))
	mux.Handle("GET /.auth/logout", g.handle(g.logoutPage))
	mux.Handle("POST /.auth/logout", g.handle(g.logout))
	mux.Handle("GET /.auth/me", g.handle(g.me))
	mux.Handle("GET /.auth/check", g.handle(g.check))
	mux.Handle("/.auth/check/", g.handle(g.check)) // Envoy ext_authz: any method, original path after the prefix
	mux.Handle("GET /.auth/start", g.handle(g.start))
	mux.Handle("GET /.auth/healthz", http.HandlerFunc(healthz))
	mux.Handle("POST /.auth/backchannel-logout", g.handle(g.backchannelLogout))
	mux.Handle("/.auth/backchannel-logout", g.handle(methodNotAllowed(http.MethodPost)))
	mux.Handle("GET /.auth/jwks.json", g.handle(g.jwks))
	mux.Handle("/.auth/", g.handle(func(w http.ResponseWriter, r *http.Request) error {
		return fail(http.StatusNotFound, "not_found", "There is no such gateway endpoint.", nil)
	}))
	return noStore(mux)
}

// noStore marks every answer of the gateway's own endpoints as not cacheable.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// isAuthPath reports whether a clean path is under the reserved /.auth/ prefix (any case).
func isAuthPath(p string) bool {
	return len(p) >= len(authPrefix)-1 && strings.EqualFold(p[:len(authPrefix)-1], authPrefix[:len(authPrefix)-1]) &&
		(len(p) == len(authPrefix)-1 || p[len(authPrefix)-1] == '/')
}

// validMethod accepts upper-case method tokens only, so that "get" cannot bypass a
// method-based rule here while an upstream reads it as GET.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
