package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// forward serves a request for an upstream route: route, method, CORS, session, CSRF, policy,
// then the proxy. r.URL.Path is already the normalised path.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) error {
	i := g.table.Match(r.Host, r.URL.Path)
	if i < 0 {
		return fail(http.StatusNotFound, "no_route", "There is nothing here.", nil)
	}
	rt := &g.routes[i]
	noteRoute(w, rt.Name)
	if isPreflight(r) {
		return g.preflight(w, r, rt)
	}
	g.setCORS(w, r)
	if !rt.allows(r.Method) {
		w.Header().Set("Allow", strings.Join(rt.Methods, ", "))
		return fail(http.StatusMethodNotAllowed, "method_not_allowed", "This method is not allowed here.", nil)
	}
	if rt.Access.Public {
		g.proxy.Serve(w, r, i, nil)
		return nil
	}
	if g.bearer != nil && hasBearer(r) {
		return g.forwardBearer(w, r, i) // the token alone decides, even next to a cookie
	}
	rec, err := g.loadSession(r)
	if err != nil {
		return err
	}
	if rec == nil {
		return g.unauthenticated(w, r)
	}
	noteUser(w, rec.UserID)
	if err := g.checkCSRF(r, rt); err != nil {
		return err
	}
	id := identityOf(rec)
	if !rt.Access.Allows(id) {
		g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "access_denied", UserID: rec.UserID,
			SessionHandle: rec.Handle, IP: g.clientIP(r), UserAgent: userAgent(r), Route: rt.Name, Reason: "policy"})
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	if rt.PassAccessToken {
		if rec, err = g.freshTokens(r, rec); err != nil {
			return g.sessionGone(w, r, err)
		}
	}
	h := g.identityHeaders(rec, rt)
	if err := g.setIdentityJWT(r.Context(), h, rec, rt); err != nil {
		return err
	}
	r.Header.Del("Authorization") // never the client's own; pass_access_token sets the session's
	g.proxy.Serve(w, r, i, h)
	return nil
}

// loadSession returns the live session of r, nil when there is none, or an error answered
// with 503 when the session store cannot be reached (fail closed).
func (g *Gateway) loadSession(r *http.Request) (*session.Record, error) {
	s, err := g.opts.Sessions.Get(r, g.opts.CookieName)
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away: not a store outage (no error log, no store-error metric).
			return nil, fail(http.StatusServiceUnavailable, "client_gone", "The request was cancelled.", nil)
		}
		if errors.Is(err, session.ErrUnavailable) {
			g.obs.ObserveStoreError("sessions")
			return nil, fail(http.StatusServiceUnavailable, "session_store_unavailable",
				"The service is temporarily unavailable. Please try again shortly.", err)
		}
		return nil, nil
	}
	return session.RecordFrom(s), nil
}

// unauthenticated answers a request without a live session: browser navigations go to the
// login with the current path as return_to, everything else gets 401 JSON.
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request) error {
	closeIfBodyUnread(w, r)
	if !wantsHTML(r) {
		g.challenge(w)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return nil
	}
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authPrefix+"login?return_to="+url.QueryEscape(SafeReturnTo(target)), http.StatusFound)
	return nil
}

// identityOf builds the identity of a session.
func identityOf(rec *session.Record) *Identity {
	return &Identity{
		UserID: rec.UserID, Subject: rec.Subject, Issuer: rec.Issuer,
		Email: rec.Email, EmailVerified: rec.EmailVerified, Name: rec.Name,
		Roles: rec.Roles, Groups: rec.Groups,
	}
}

// identityHeaders are the headers the upstream receives for a session, set after the proxy
// has stripped every client-supplied X-Auth-* header.
func (g *Gateway) identityHeaders(rec *session.Record, rt *Route) http.Header {
	h := make(http.Header, 7)
	h["X-Auth-User-Id"] = []string{rec.UserID}
	h["X-Auth-Subject"] = []string{rec.Subject}
	h["X-Auth-Email"] = []string{cleanHeaderValue(rec.Email)}
	h["X-Auth-Name"] = []string{cleanHeaderValue(rec.Name)}
	h["X-Auth-Roles"] = []string{strings.Join(rec.Roles, ",")}
	h["X-Auth-Groups"] = []string{strings.Join(rec.Groups, ",")}
	if rt.PassAccessToken && rec.AccessToken != "" {
		h["Authorization"] = []string{"Bearer " + rec.AccessToken}
	}
	return h
}
