package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// callback completes a login: it takes the flow of `state` (single use, bound to this browser),
// exchanges the code with the PKCE verifier, verifies the ID token (signature, iss, aud, exp by
// go-oidc; nonce here), provisions the user, and starts a NEW session. Any failure leaves no
// session and answers with a page whose status fits; nothing the IdP or client sent is echoed.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Referrer-Policy", "no-referrer")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(q["state"]) != 1 || q.Get("state") == "" {
		return fail(http.StatusBadRequest, "bad_state", "This login link is invalid. Please start the login again.", err)
	}
	flow, err := g.takeFlow(r, q.Get("state"))
	if err != nil {
		return err
	}
	if idpErr := q.Get("error"); idpErr != "" {
		g.auditFailure(r, "", "idp_error")
		return fail(http.StatusForbidden, "idp_refused", "The identity provider did not complete the login. You can try again.",
			fmt.Errorf("idp error %q", truncate(idpErr, 64)))
	}
	if iss := q.Get("iss"); iss != "" && iss != g.opts.OIDC.Issuer {
		return fail(http.StatusBadRequest, "bad_issuer", "This login response came from an unexpected issuer.", nil)
	}
	code := q.Get("code")
	if code == "" || len(q["code"]) != 1 {
		return fail(http.StatusBadRequest, "missing_code", "This login response is incomplete. Please start the login again.", nil)
	}
	claims, tok, err := g.redeem(r.Context(), code, flow)
	if err != nil {
		g.auditFailure(r, "", "token")
		return err
	}
	rec, err := g.provision(r, claims, tok)
	if err != nil {
		return err
	}
	if err := g.startSession(w, r, rec); err != nil {
		return err
	}
	g.obs.ObserveLogin("success")
	http.Redirect(w, r, SafeReturnTo(flow.ReturnTo), http.StatusFound)
	return nil
}

// takeFlow takes the login flow of state exactly once and checks it belongs to this browser.
func (g *Gateway) takeFlow(r *http.Request, state string) (session.Flow, error) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimout)
	defer cancel()
	flow, err := g.opts.Sessions.TakeFlow(ctx, state)
	switch {
	case errStoreUnavailable(err):
		return flow, fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	case err != nil:
		return flow, fail(http.StatusBadRequest, "bad_state", "This login link has expired or was already used. Please start the login again.", err)
	}
	c, err := r.Cookie(g.txCookie)
	if err != nil || !equalHash(hashString(c.Value), flow.Binding) {
		return flow, fail(http.StatusBadRequest, "bad_state", "This login was started in another browser. Please start the login again.", err)
	}
	if g.now().Sub(flow.CreatedAt) > flowTTL {
		return flow, fail(http.StatusBadRequest, "bad_state", "This login link has expired. Please start the login again.", nil)
	}
	return flow, nil
}

// idClaims are the ID token claims the gateway reads; the rest stays in raw.
type idClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
	Name          string `json:"name"`
	Nonce         string `json:"nonce"`
	SID           string `json:"sid"`
	raw           map[string]any
}

// redeem exchanges the code and verifies the ID token, including the nonce of the flow.
func (g *Gateway) redeem(ctx context.Context, code string, flow session.Flow) (*idClaims, *oauth2.Token, error) {
	d, err := g.idp.get()
	if err != nil {
		return nil, nil, fail(http.StatusServiceUnavailable, "idp_unavailable", "The identity provider cannot be reached. Please try again shortly.", err)
	}
	ctx, cancel := context.WithTimeout(ctx, idpTimeout)
	defer cancel()
	tok, err := d.oauth.Exchange(oidc.ClientContext(ctx, g.opts.HTTPClient), code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, nil, fail(http.StatusUnauthorized, "code_rejected", "The identity provider rejected this login. Please start the login again.", err)
		}
		return nil, nil, fail(http.StatusBadGateway, "idp_unavailable", "The identity provider could not be reached. Please try again shortly.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, fail(http.StatusBadGateway, "no_id_token", "The identity provider sent no ID token.", nil)
	}
	idt, err := d.verifier.Verify(oidc.ClientContext(ctx, g.opts.HTTPClient), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			return nil, nil, fail(http.StatusBadGateway, "idp_unavailable", "The identity provider's keys could not be fetched.", err)
		}
		return nil, nil, fail(http.StatusUnauthorized, "id_token_rejected", "The identity provider's answer could not be verified.", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil || idt.Claims(&c.raw) != nil {
		return nil, nil, fail(http.StatusUnauthorized, "id_token_rejected", "The identity provider's answer could not be read.", err)
	}
	if c.Nonce == "" || !equalHash(c.Nonce, flow.Nonce) {
		return nil, nil, fail(http.StatusUnauthorized, "id_token_rejected", "The identity provider's answer does not belong to this login.", errors.New("nonce mismatch"))
	}
	if err := g.checkIDClaims(idt, &c); err != nil {
		return nil, nil, fail(http.StatusUnauthorized, "id_token_rejected", "The identity provider's answer could not be verified.", err)
	}
	return &c, tok, nil
}

// checkIDClaims adds the ID token checks go-oidc leaves to the caller (OIDC Core 3.1.3.7):
// no audience but this client, azp (when present) is this client, iat not in the future, and a
// subject that can be stored and sent in a header as is (1-255 printable ASCII characters).
func (g *Gateway) checkIDClaims(idt *oidc.IDToken, c *idClaims) error {
	for _, aud := range idt.Audience {
		if aud != g.opts.OIDC.ClientID {
			return fmt.Errorf("untrusted audience %q", truncate(aud, 64))
		}
	}
	if azp, ok := c.raw["azp"]; ok && azp != g.opts.OIDC.ClientID {
		return errors.New("azp names another client")
	}
	if idt.IssuedAt.After(g.now().Add(clockSkew)) {
		return errors.New("iat in the future")
	}
	if !validSubject(c.Subject) {
		return errors.New("subject empty, too long or not printable ASCII")
	}
	return nil
}

// validSubject accepts 1-255 printable ASCII characters (OIDC Core: sub is at most 255 ASCII
// characters); anything else could not travel in X-Auth-Subject intact.
func validSubject(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// provision upserts the user and builds the session record. The user store is only on the
// login path: if it is down the login fails with 503 and no session is made.
func (g *Gateway) provision(r *http.Request, c *idClaims, tok *oauth2.Token) (*session.Record, error) {
	p := users.Profile{
		Issuer: g.opts.OIDC.Issuer, Subject: c.Subject,
		Email: cleanHeaderValue(c.Email), EmailVerified: c.EmailVerified != nil && *c.EmailVerified,
		Name:   cleanHeaderValue(c.Name),
		Roles:  claimStrings(c.raw, g.opts.OIDC.RolesClaim),
		Groups: claimStrings(c.raw, g.opts.OIDC.GroupsClaim),
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimout)
	defer cancel()
	u, err := g.opts.Users.Upsert(ctx, p)
	if err != nil {
		g.obs.ObserveStoreError("users")
		g.auditFailure(r, "", "user_store")
		return nil, fail(http.StatusServiceUnavailable, "user_store_unavailable", "Logins are temporarily unavailable. Please try again shortly.", err)
	}
	if u.Disabled {
		g.auditFailure(r, u.ID, "disabled")
		return nil, fail(http.StatusForbidden, "account_disabled", "This account is disabled. Contact your administrator.", nil)
	}
	idToken, _ := tok.Extra("id_token").(string)
	now := g.now()
	rec := &session.Record{
		UserID: u.ID, Subject: c.Subject, Issuer: g.opts.OIDC.Issuer,
		Email: p.Email, EmailVerified: p.EmailVerified, Name: p.Name,
		Roles: u.EffectiveRoles(), Groups: p.Groups, IdPSessionID: c.SID, Provider: providerID,
		IDToken: idToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenExpiry: tok.Expiry,
		CreatedAt: now, LastSeenAt: now, IP: g.clientIP(r), UserAgent: userAgent(r),
	}
	g.dropUnusedTokens(rec)
	return rec, nil
}

// dropUnusedTokens removes from a new session the tokens nothing of this configuration will
// send anywhere, so that a copy of Redis holds no more credentials than the gateway needs
// (and a session takes less memory): the access and refresh tokens unless a route has
// pass_access_token, the ID token unless the IdP has an end_session_endpoint (it is only sent
// there, as id_token_hint). A session that kept no access token is asked to log in again when
// it reaches a pass_access_token route (see freshTokens).
func (g *Gateway) dropUnusedTokens(rec *session.Record) {
	if !g.keepAPITokens {
		rec.AccessToken, rec.RefreshToken, rec.TokenExpiry = "", "", time.Time{}
	}
	if d, err := g.idp.get(); err != nil || d.endSession == "" {
		rec.IDToken = ""
	}
}

// startSession ends the session the browser came with (if any) and saves rec under a NEW id.
func (g *Gateway) startSession(w http.ResponseWriter, r *http.Request, rec *session.Record) error {
	if old, err := g.opts.Sessions.Get(r, g.opts.CookieName); err == nil {
		if prev := session.RecordFrom(old); prev != nil {
			ctx, cancel := context.WithTimeout(r.Context(), storeTimout)
			_ = g.opts.Sessions.Revoke(ctx, prev.Handle)
			cancel()
		}
	}
	s, err := g.opts.Sessions.New(r, g.opts.CookieName)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	}
	session.SetRecord(s, rec)
	if err := g.opts.Sessions.Save(r, w, s); err != nil {
		return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	}
	g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "login", UserID: rec.UserID, SessionHandle: rec.Handle,
		IP: rec.IP, UserAgent: rec.UserAgent})
	return nil
}

// auditFailure records a failed login.
func (g *Gateway) auditFailure(r *http.Request, userID, reason string) {
	g.obs.ObserveLogin(reason)
	g.opts.Users.Audit(users.Event{Time: g.now(), Kind: "login_failure", UserID: userID,
		IP: g.clientIP(r), UserAgent: userAgent(r), Reason: reason})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
