package gateway

import (
	"net/http"
	"strings"
)

// stateChanging reports whether a method changes state (and so needs the CSRF checks).
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// sameOrigin reports whether origin (as sent in the Origin header) is the gateway's own.
func (g *Gateway) sameOrigin(origin string) bool {
	return strings.EqualFold(origin, g.origin)
}

// allowedOrigin reports whether origin is the gateway's own or listed in cors.allowed_origins.
// Comparison is exact (after lower-casing); "null" and look-alike suffixes never match.
func (g *Gateway) allowedOrigin(origin string) bool {
	return g.sameOrigin(origin) || g.allowed[strings.ToLower(origin)]
}

// crossSiteRefused reports whether a request carried by the cookie comes from a site that may
// not act with it: an Origin that is neither ours nor allowed, or, without Origin, a
// Sec-Fetch-Site of cross-site or same-site. Requests with neither header are not from a
// browser that could be tricked, and pass.
func (g *Gateway) crossSiteRefused(r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		return !g.allowedOrigin(origin)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// checkCSRF applies the cross-site defences of a route to a request carried by the cookie:
// state-changing methods and WebSocket upgrades from a foreign site are refused, and routes
// with csrf: header also need the exact header "X-CSRF: 1" on state-changing methods.
func (g *Gateway) checkCSRF(r *http.Request, rt *Route) error {
	upgrade := isWebSocket(r)
	if !stateChanging(r.Method) && !upgrade {
		return nil
	}
	if g.crossSiteRefused(r) {
		return fail(http.StatusForbidden, "cross_site_request", "Cross-site requests are not allowed here.", nil)
	}
	if rt.CSRFHeader && stateChanging(r.Method) {
		if v := r.Header.Values("X-Csrf"); len(v) != 1 || v[0] != "1" {
			return fail(http.StatusForbidden, "csrf_header_required", "This request needs the header X-CSRF: 1.", nil)
		}
	}
	return nil
}

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// setCORS adds the CORS response headers for an allowed cross-site origin. Other origins get
// none. When cors.allowed_origins lists any origin, Vary: Origin is set on every answer so that
// caches keep answers per origin apart. Without it no answer that a cache may keep depends on
// Origin (only refusals of state-changing requests do, and errors are no-store), so nothing
// is added: one header less on every proxied answer.
func (g *Gateway) setCORS(w http.ResponseWriter, r *http.Request) {
	if len(g.allowed) == 0 {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || g.sameOrigin(origin) || !g.allowed[strings.ToLower(origin)] {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
}

// isPreflight reports whether r is a CORS preflight (not a plain OPTIONS request).
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight for a route: 204 with the allowed methods and headers for
// an allowed origin asking for an allowed method, 403 otherwise.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, rt *Route) error {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if !g.allowed[strings.ToLower(origin)] || !validMethod(method) || !rt.allows(method) {
		w.Header().Add("Vary", "Origin")
		return fail(http.StatusForbidden, "cors_refused", "This origin may not call this endpoint.", nil)
	}
	g.setCORS(w, r)
	h := w.Header()
	methods := "GET, HEAD, POST, PUT, PATCH, DELETE"
	if len(rt.Methods) > 0 {
		methods = strings.Join(rt.Methods, ", ")
	}
	h.Set("Access-Control-Allow-Methods", methods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && headerSafe(req) {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allows reports whether the route accepts method.
func (rt *Route) allows(method string) bool {
	if len(rt.Methods) == 0 {
		return true
	}
	for _, m := range rt.Methods {
		if m == method {
			return true
		}
	}
	return false
}
