package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// checkPath is the forward-auth endpoint; under checkPath+"/" the rest of the path is the
// original request's (Envoy ext_authz with path_prefix).
const checkPath = authPrefix + "check"

// original is the request a proxy in front asks about.
type original struct {
	method string
	host   string
	path   string // the output of upstream.NormalizePath
	query  string
}

// returnTo is the original request as a path+query for the login's return_to.
func (o original) returnTo() string {
	p := (&url.URL{Path: o.path}).EscapedPath()
	if o.query != "" {
		p += "?" + o.query
	}
	return p
}

// check is the forward-auth endpoint (nginx auth_request, Traefik forwardAuth, Envoy
// ext_authz): it evaluates the route, method, cross-site and access policy of the original
// request and answers 200 with the identity headers on the response, 401 without a session
// (or a bad bearer token), 403 when anything denies. The original request is named by
// X-Forwarded-Uri / X-Original-URI, X-Forwarded-Method / X-Original-Method and
// X-Forwarded-Host, or, under /.auth/check/..., by the method and the rest of the path.
// Anything missing, repeated, contradictory or unparsable is denied (fail closed), never allowed.
//
// Browser navigations without a session get 302 to the login instead of 401 when the proxy
// hands the gateway's answer to the client: with ?redirect=1 (Traefik) and under
// /.auth/check/... (Envoy). nginx needs the 401 (it answers any other status with 500) and
// sends the browser on with error_page 401 to /.auth/start. See docs/forward-auth.md.
func (g *Gateway) check(w http.ResponseWriter, r *http.Request) error {
	if len(g.opts.TrustedProxies) > 0 && !g.trusted(remoteAddr(r)) {
		return fail(http.StatusForbidden, "untrusted_proxy", "Forward-auth answers trusted proxies only.", nil)
	}
	o, redirect, err := originalOf(r)
	if err != nil {
		return fail(http.StatusForbidden, "bad_original_request", "The original request could not be read.", err)
	}
	i := g.table.Match(o.host, o.path)
	if i < 0 || !g.routes[i].allows(o.method) {
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	rt := &g.routes[i]
	orig := *r // the original request: its method, with the client headers the proxy passed on
	orig.Method = o.method
	switch {
	case rt.Access.Public:
		w.WriteHeader(http.StatusOK)
		return nil
	case isPreflight(&orig):
		return g.checkPreflight(w, r, rt)
	case g.bearer != nil && hasBearer(r):
		return g.checkBearer(w, r, rt)
	}
	rec, err := g.loadSession(r)
	if err != nil {
		return err
	}
	if rec == nil {
		return g.checkUnauthenticated(w, &orig, o, redirect)
	}
	noteUser(w, rec.UserID)
	if err := g.checkCSRF(&orig, rt); err != nil {
		return err
	}
	if id := identityOf(rec); !rt.Access.Allows(&id) {
		g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "access_denied", UserID: rec.UserID,
			SessionHandle: rec.Handle, IP: g.clientIP(r), UserAgent: userAgent(r), Route: rt.Name, Reason: "policy"})
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	h, err := g.addIdentityJWT(r.Context(), g.identityHeaders(rec, rt), rec, rt)
	if err != nil {
		return err
	}
	// The session's token is for pass_access_token routes of the proxy path only.
	setFields(w.Header(), h, "Authorization")
	w.WriteHeader(http.StatusOK)
	return nil
}

// checkPreflight lets a CORS preflight (which carries no cookie) through to the app when its
// origin is in cors.allowed_origins and it asks for a method the route allows; 403 otherwise.
func (g *Gateway) checkPreflight(w http.ResponseWriter, r *http.Request, rt *Route) error {
	m := r.Header.Get("Access-Control-Request-Method")
	if !g.allowed[strings.ToLower(r.Header.Get("Origin"))] || !validMethod(m) || !rt.allows(m) {
		return fail(http.StatusForbidden, "cors_refused", "This origin may not call this endpoint.", nil)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// checkBearer is check for a request that carries a bearer token: the token alone decides.
func (g *Gateway) checkBearer(w http.ResponseWriter, r *http.Request, rt *Route) error {
	id, _, err := g.bearer.authenticate(r.Context(), r)
	if err != nil {
		return g.rejectBearer(w, r, err)
	}
	if !rt.Access.Allows(id) {
		g.auditBearerDenied(r, rt)
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	setFields(w.Header(), bearerHeaders(id), "")
	w.WriteHeader(http.StatusOK)
	return nil
}

// checkUnauthenticated answers check without a session: 302 to the login for a browser
// navigation when redirect is set, else 401 JSON.
// orig is the check request with the original method.
func (g *Gateway) checkUnauthenticated(w http.ResponseWriter, orig *http.Request, o original, redirect bool) error {
	if redirect && wantsHTML(orig) {
		http.Redirect(w, orig, loginURL(o.returnTo()), http.StatusFound)
		return nil
	}
	g.challenge(w)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
	return nil
}

// start is where nginx sends a request that its auth_request refused with 401 (error_page
// 401 = @login, proxied here with X-Original-URI and X-Original-Method): a browser navigation
// (GET/HEAD with Accept text/html or Sec-Fetch-Mode navigate) gets 302 to the login with the
// original request as return_to, validated like every return_to; anything else gets the 401
// JSON ({"error":"invalid_token"} when it carried a bearer token). It sets no WWW-Authenticate:
// nginx passes on the one of the check's 401, which names the reason. rd= may replace the header.
func (g *Gateway) start(w http.ResponseWriter, r *http.Request) error {
	if g.bearer != nil && hasBearer(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return nil
	}
	method, err := oneOf(r.Header, "X-Original-Method", "X-Forwarded-Method")
	if err != nil || method == "" {
		method = r.Method
	}
	orig := *r
	orig.Method = method
	if !wantsHTML(&orig) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return nil
	}
	target, err := oneOf(r.Header, "X-Original-Uri", "X-Forwarded-Uri")
	if err != nil || target == "" {
		if v := r.URL.Query()["rd"]; len(v) == 1 {
			target = v[0]
		}
	}
	http.Redirect(w, r, loginURL(target), http.StatusFound)
	return nil
}

// loginURL is the login endpoint with a validated return_to (a relative URL: the browser stays
// on the host it used, which must route /.auth/ to the gateway).
func loginURL(returnTo string) string {
	return authPrefix + "login?return_to=" + url.QueryEscape(SafeReturnTo(returnTo))
}

// originalOf reads the original request of a forward-auth call, and whether the caller wants
// browser navigations redirected to the login.
func originalOf(r *http.Request) (original, bool, error) {
	var o original
	if r.URL.Path != checkPath {
		return originalFromPath(r)
	}
	uri, err := oneOf(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if err != nil {
		return o, false, err
	}
	if o.method, err = oneOf(r.Header, "X-Forwarded-Method", "X-Original-Method"); err != nil {
		return o, false, err
	}
	if uri == "" {
		return o, false, errors.New("original URI missing")
	}
	if o.method == "" {
		// nginx auth_request sends no method unless configured to; the request is then judged
		// as a GET (docs/forward-auth.md: set X-Forwarded-Method so writes get the method and
		// CSRF checks).
		o.method = http.MethodGet
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Host != "" || u.Scheme != "" || u.Opaque != "" {
		return o, false, fmt.Errorf("original URI: %w", err)
	}
	if o.path, err = upstream.NormalizePath(u.EscapedPath()); err != nil {
		return o, false, err
	}
	if o.host, err = oneOf(r.Header, "X-Forwarded-Host"); err != nil {
		return o, false, err
	}
	if o.host == "" {
		o.host = r.Host
	}
	if !validMethod(o.method) {
		return o, false, errors.New("original method")
	}
	o.query = u.RawQuery
	q, _ := url.ParseQuery(r.URL.RawQuery)
	return o, q.Get("redirect") == "1", nil
}

// originalFromPath reads the original request of /.auth/check/<path>: the method, the Host and
// the raw request target minus the prefix, normalised on its own (the gateway's normalisation
// of the whole path could have resolved "/.auth/check/../x" differently).
func originalFromPath(r *http.Request) (original, bool, error) {
	o := original{method: r.Method, host: r.Host}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || u.Host != "" || !strings.HasPrefix(u.EscapedPath(), checkPath+"/") {
		return o, false, fmt.Errorf("request target: %w", err)
	}
	if o.path, err = upstream.NormalizePath(strings.TrimPrefix(u.EscapedPath(), checkPath)); err != nil {
		return o, false, err
	}
	if h, err := oneOf(r.Header, "X-Forwarded-Host"); err != nil {
		return o, false, err
	} else if h != "" {
		o.host = h
	}
	o.query = u.RawQuery
	return o, true, nil
}

// oneOf returns the value of the first of names present, requiring every name present to have
// exactly one value and all of them to agree: a client-supplied X-Forwarded-Uri next to the
// proxy's X-Original-URI must not decide which route is checked.
func oneOf(h http.Header, names ...string) (string, error) {
	val, found := "", false
	for _, n := range names {
		vs := h.Values(n)
		switch {
		case len(vs) == 0:
			continue
		case len(vs) > 1:
			return "", fmt.Errorf("%s repeated", n)
		case found && vs[0] != val:
			return "", fmt.Errorf("%s contradicts %s", n, names[0])
		}
		val, found = vs[0], true
	}
	return val, nil
}

// forwardBearer serves a request of an authenticated route that carries a bearer token: the
// token alone decides (a cookie on the same request is ignored), no CSRF check (a bearer
// header is not sent by browsers on their own), then the route's policy and the proxy.
func (g *Gateway) forwardBearer(w http.ResponseWriter, r *http.Request, i int) error {
	rt := &g.routes[i]
	id, token, err := g.bearer.authenticate(r.Context(), r)
	if err != nil {
		return g.rejectBearer(w, r, err)
	}
	if !rt.Access.Allows(id) {
		g.auditBearerDenied(r, rt)
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	h := bearerHeaders(id)
	if rt.PassAccessToken {
		h = append(h, upstream.Field{Name: "Authorization", Value: "Bearer " + token})
	}
	r.Header.Del("Authorization")
	g.proxy.Serve(w, r, i, h)
	return nil
}

// bearerHeaders are the identity headers of a bearer caller. There is no X-Auth-User-Id: the
// caller was never provisioned (no database on this path); X-Auth-Subject is the IdP's sub.
func bearerHeaders(id *Identity) []upstream.Field {
	return append(make([]upstream.Field, 0, 6),
		upstream.Field{Name: "X-Auth-Subject", Value: id.Subject},
		upstream.Field{Name: "X-Auth-Email", Value: id.Email},
		upstream.Field{Name: "X-Auth-Name", Value: id.Name},
		upstream.Field{Name: "X-Auth-Roles", Value: strings.Join(id.Roles, ",")},
		upstream.Field{Name: "X-Auth-Groups", Value: strings.Join(id.Groups, ",")})
}

// rejectBearer answers a failed bearer authentication: 401 JSON with a WWW-Authenticate
// challenge naming a short fixed reason (RFC 6750), or 503 when the issuer's keys could not be
// fetched. The token is never echoed or logged.
func (g *Gateway) rejectBearer(w http.ResponseWriter, r *http.Request, err error) error {
	var be *bearerError
	if !errors.As(err, &be) {
		be = rejectToken("invalid token", err)
	}
	if be.unavailable {
		return fail(http.StatusServiceUnavailable, "idp_unavailable",
			"The identity provider's keys cannot be fetched. Please try again shortly.", be.err)
	}
	g.log.Info("bearer token rejected", "path", r.URL.Path, "reason", be.reason, "err", be.err)
	closeIfBodyUnread(w, r)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+be.reason+`"`)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "message": be.reason})
	return nil
}

// challenge adds the bare Bearer challenge to a 401 for a request without credentials, when
// bearer authentication is enabled.
func (g *Gateway) challenge(w http.ResponseWriter) {
	if g.bearer != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authgate"`)
	}
}

func (g *Gateway) auditBearerDenied(r *http.Request, rt *Route) {
	g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "access_denied", IP: g.clientIP(r),
		UserAgent: userAgent(r), Route: rt.Name, Reason: "policy_bearer"})
}
