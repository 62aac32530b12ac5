package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// logoutPage shows a button that POSTs to /.auth/logout: logging out changes state, so a GET
// (a link, an <img>) never does it.
func (g *Gateway) logoutPage(w http.ResponseWriter, r *http.Request) error {
	writePage(w, http.StatusOK, page{Title: "Log out", Message: "Do you want to log out?",
		Action: authPrefix + "logout", Button: "Log out"})
	return nil
}

// logout ends the session (server-side and the cookie) and sends the browser to the IdP's
// end_session_endpoint when it has one (RP-initiated logout), else to oidc.post_logout_redirect.
// Cross-site POSTs are refused so that no other site can log a user out.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) error {
	if g.crossSiteRefused(r) {
		return fail(http.StatusForbidden, "cross_site_request", "Cross-site requests are not allowed here.", nil)
	}
	g.setCORS(w, r)
	var idToken string
	s, err := g.opts.Sessions.Get(r, g.opts.CookieName)
	if err != nil && errStoreUnavailable(err) {
		g.opts.Sessions.ClearCookie(w)
		return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	}
	if rec := session.RecordFrom(s); rec != nil {
		idToken = rec.IDToken
		ctx, cancel := context.WithTimeout(r.Context(), storeTimout)
		err := g.opts.Sessions.Revoke(ctx, rec.Handle)
		cancel()
		if err != nil && errStoreUnavailable(err) {
			g.opts.Sessions.ClearCookie(w)
			return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
		}
		g.obs.ObserveRevocation("logout", 1)
		g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "logout", UserID: rec.UserID, SessionHandle: rec.Handle,
			IP: g.clientIP(r), UserAgent: userAgent(r)})
	}
	g.opts.Sessions.ClearCookie(w)
	http.Redirect(w, r, g.logoutTarget(idToken), http.StatusSeeOther)
	return nil
}

// logoutTarget is where the browser goes after logout. Nothing of the request decides it.
func (g *Gateway) logoutTarget(idToken string) string {
	after := g.opts.OIDC.PostLogoutRedirect
	if after == "" {
		after = "/"
	}
	d, err := g.idp.get()
	if err != nil || d.endSession == "" {
		return after
	}
	if strings.HasPrefix(after, "/") {
		after = g.origin + after
	}
	q := url.Values{"client_id": {g.opts.OIDC.ClientID}, "post_logout_redirect_uri": {after}}
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	sep := "?"
	if strings.Contains(d.endSession, "?") {
		sep = "&"
	}
	return d.endSession + sep + q.Encode()
}
