package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
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
	if id := identityOf(rec); !rt.Access.Allows(&id) {
		g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "access_denied", UserID: rec.UserID,
			SessionHandle: rec.Handle, IP: g.clientIP(r), UserAgent: userAgent(r), Route: rt.Name, Reason: "policy"})
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	if rt.PassAccessToken {
		if rec, err = g.freshTokens(r, rec); err != nil {
			return g.sessionGone(w, r, err)
		}
	}
	h, err := g.addIdentityJWT(r.Context(), g.identityHeaders(rec, rt), rec, rt)
	if err != nil {
		return err
	}
	delete(r.Header, "Authorization") // never the client's own; pass_access_token sets the session's
	g.proxy.Serve(w, r, i, h)
	return nil
}

// loadSession returns the live session of r, nil when there is none, or an error answered
// with 503 when the session store cannot be reached (fail closed). The record may be shared
// with the session cache and other requests: it must not be modified (see session.Store.Load).
func (g *Gateway) loadSession(r *http.Request) (*session.Record, error) {
	rec, err := g.opts.Sessions.Load(r, g.opts.CookieName)
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
	return rec, nil
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

// identityOf builds the identity of a session (a value: the policy check keeps it on the
// stack).
func identityOf(rec *session.Record) Identity {
	return Identity{
		UserID: rec.UserID, Subject: rec.Subject, Issuer: rec.Issuer,
		Email: rec.Email, EmailVerified: rec.EmailVerified, Name: rec.Name,
		Roles: rec.Roles, Groups: rec.Groups,
	}
}

// identityHeaders are the headers the upstream receives for a session, set after the proxy
// has stripped every client-supplied X-Auth-* header. The result may be shared (see
// identityMemo.fields): callers append to it, never modify its elements.
func (g *Gateway) identityHeaders(rec *session.Record, rt *Route) []upstream.Field {
	h := g.identities.fields(rec)
	if rt.PassAccessToken && rec.AccessToken != "" {
		h = append(h, upstream.Field{Name: "Authorization", Value: "Bearer " + rec.AccessToken})
	}
	return h
}

// setFields sets each field in dst (an answer's headers), except the one named skip.
func setFields(dst http.Header, fields []upstream.Field, skip string) {
	for _, f := range fields {
		if f.Name != skip {
			dst[f.Name] = []string{f.Value}
		}
	}
}
