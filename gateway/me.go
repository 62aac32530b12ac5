package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/upstream"
)

// meResponse is the body of GET /.auth/me.
type meResponse struct {
	UserID    string    `json:"user_id"`
	Subject   string    `json:"sub"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Groups    []string  `json:"groups"`
	ExpiresAt time.Time `json:"expires_at"`
}

// me tells a SPA who is logged in; 401 JSON without a live session. Never a token.
func (g *Gateway) me(w http.ResponseWriter, r *http.Request) error {
	g.setCORS(w, r)
	rec, err := g.loadSession(r)
	if err != nil {
		return err
	}
	if rec == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return nil
	}
	roles, groups := rec.Roles, rec.Groups
	if roles == nil {
		roles = []string{}
	}
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, meResponse{UserID: rec.UserID, Subject: rec.Subject, Email: rec.Email,
		Name: rec.Name, Roles: roles, Groups: groups, ExpiresAt: rec.ExpiresAt})
	return nil
}

// check is the forward-auth endpoint (nginx auth_request, Traefik forwardAuth, Envoy): it
// evaluates the policy of the route matching the original request named by X-Forwarded-Uri
// (or X-Original-URI), X-Forwarded-Method and X-Forwarded-Host, and answers 200 with the
// identity headers on the response, 401 without a session, 403 when the policy denies. An
// original URI that is missing or does not parse is denied (fail closed), never allowed.
func (g *Gateway) check(w http.ResponseWriter, r *http.Request) error {
	uri := r.Header.Get("X-Forwarded-Uri")
	if uri == "" {
		uri = r.Header.Get("X-Original-Uri")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return fail(http.StatusForbidden, "bad_original_uri", "The original request could not be read.", err)
	}
	clean, err := upstream.NormalizePath(u.EscapedPath())
	if err != nil {
		return fail(http.StatusForbidden, "bad_path", "The request path is not allowed.", err)
	}
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	method := strings.TrimSpace(r.Header.Get("X-Forwarded-Method"))
	if method == "" {
		method = http.MethodGet
	}
	i := g.table.Match(host, clean)
	if i < 0 || !validMethod(method) || !g.routes[i].allows(method) {
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	rt := &g.routes[i]
	if rt.Access.Public {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rec, err := g.loadSession(r)
	if err != nil {
		return err
	}
	if rec == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return nil
	}
	if !rt.Access.Allows(identityOf(rec)) {
		return fail(http.StatusForbidden, "forbidden", "You do not have access to this page.", nil)
	}
	for k, v := range g.identityHeaders(rec, rt) {
		if k != "Authorization" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
