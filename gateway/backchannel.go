package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authgate/authgate/users"
)

// OIDC Back-Channel Logout 1.0 (https://openid.net/specs/openid-connect-backchannel-1_0.html).
const (
	backchannelEvent  = "http://schemas.openid.net/event/backchannel-logout"
	maxLogoutBody     = 64 << 10
	logoutTokenMaxAge = 10 * time.Minute // an older iat is refused, so a remembered jti covers every replay
	logoutTokenSkew   = time.Minute      // allowed clock difference for iat in the future
)

// logoutClaims are the claims of a logout token the gateway reads (iss, aud, exp and the
// signature are checked by go-oidc).
type logoutClaims struct {
	Subject string         `json:"sub"`
	SID     string         `json:"sid"`
	JTI     string         `json:"jti"`
	Events  map[string]any `json:"events"`
}

// backchannelLogout ends the sessions a logout token names, on every instance (they all read the
// same store): the IdP session (sid) when the token has one, else every session of the subject.
// 200 also when nothing matched (the sessions may have ended already); 400 {"error":
// "invalid_request"} for a token that fails any check, with nothing ended. The token is never
// logged.
func (g *Gateway) backchannelLogout(w http.ResponseWriter, r *http.Request) error {
	raw, err := logoutTokenOf(w, r)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return err
		}
		return g.badLogoutToken(w, r, err)
	}
	d, err := g.idp.get()
	if err != nil {
		return fail(http.StatusServiceUnavailable, "idp_unavailable", "The identity provider cannot be reached.", err)
	}
	if err := checkLogoutTyp(raw); err != nil {
		return g.badLogoutToken(w, r, err)
	}
	idt, err := d.verifier.Verify(oidc.ClientContext(r.Context(), g.opts.HTTPClient), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			return fail(http.StatusServiceUnavailable, "idp_unavailable", "The identity provider's keys could not be fetched.", err)
		}
		return g.badLogoutToken(w, r, err)
	}
	c, err := g.logoutClaimsOf(idt)
	if err != nil {
		return g.badLogoutToken(w, r, err)
	}
	release, fresh, err := g.rememberJTI(r.Context(), idt.Issuer, c.JTI)
	if err != nil {
		return storeFailure(err)
	}
	if !fresh {
		return g.badLogoutToken(w, r, errors.New("jti replayed"))
	}
	n, err := g.revokeLoggedOut(r.Context(), c)
	if err != nil {
		release() // let the IdP's retry through
		return storeFailure(err)
	}
	g.obs.ObserveRevocation("backchannel", n)
	g.log.Info("back-channel logout", "sid_present", c.SID != "", "sessions_ended", n)
	if n > 0 {
		g.opts.Users.Audit(users.Event{Time: g.now(), Kind: users.KindLogout, IP: g.clientIP(r), Reason: "backchannel"})
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// logoutTokenOf reads the single logout_token of a form POST. A body over 64 KiB is a 413; a
// wrong content type, a missing or repeated parameter is a plain error (answered 400).
func logoutTokenOf(w http.ResponseWriter, r *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", errors.New("content type is not a form")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", fail(http.StatusRequestEntityTooLarge, "too_large", "The request body is too large.", nil)
		}
		return "", err
	}
	v := r.PostForm["logout_token"]
	if len(v) != 1 || v[0] == "" {
		return "", errors.New("want exactly one logout_token")
	}
	return v[0], nil
}

// checkLogoutTyp accepts a JWS header typ of logout+jwt (the spec's recommendation), JWT, or
// none (IdPs that do not type their tokens), and refuses every other type (an access token, say).
func checkLogoutTyp(raw string) error {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return errors.New("malformed token")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return errors.New("malformed token header")
	}
	var h struct {
		Typ *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return errors.New("malformed token header")
	}
	if h.Typ == nil {
		return nil
	}
	switch strings.ToLower(*h.Typ) {
	case "logout+jwt", "application/logout+jwt", "jwt":
		return nil
	}
	return errors.New("token type is not logout+jwt")
}

// logoutClaimsOf checks what go-oidc does not: iat present and recent, the back-channel logout
// event (an object), sid and/or sub, a jti, and no nonce (so an ID token cannot pass as one).
func (g *Gateway) logoutClaimsOf(idt *oidc.IDToken) (*logoutClaims, error) {
	var all map[string]json.RawMessage
	if err := idt.Claims(&all); err != nil {
		return nil, err
	}
	if _, ok := all["nonce"]; ok {
		return nil, errors.New("logout token has a nonce")
	}
	var c logoutClaims
	if err := idt.Claims(&c); err != nil {
		return nil, err
	}
	now := g.now()
	switch {
	case idt.IssuedAt.IsZero():
		return nil, errors.New("logout token has no iat")
	case idt.IssuedAt.After(now.Add(logoutTokenSkew)):
		return nil, errors.New("logout token issued in the future")
	case idt.IssuedAt.Before(now.Add(-logoutTokenMaxAge)):
		return nil, errors.New("logout token too old")
	case c.JTI == "":
		return nil, errors.New("logout token has no jti")
	case c.SID == "" && c.Subject == "":
		return nil, errors.New("logout token has neither sid nor sub")
	}
	if ev, ok := c.Events[backchannelEvent].(map[string]any); !ok || ev == nil {
		return nil, errors.New("logout token has no back-channel logout event")
	}
	return &c, nil
}

// rememberJTI records a logout token's jti for as long as the token can be accepted; fresh is
// false when it was seen before (a replay). release forgets it again.
func (g *Gateway) rememberJTI(ctx context.Context, issuer, jti string) (release func(), fresh bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimout)
	defer cancel()
	unlock, ok, err := g.opts.Sessions.TryLock(ctx, "bcl-jti:"+issuer+"\x00"+jti, logoutTokenMaxAge+logoutTokenSkew)
	if err != nil || !ok {
		return func() {}, false, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimout)
		defer cancel()
		_ = unlock(ctx)
	}, true, nil
}

// revokeLoggedOut ends the sessions of the token's IdP session, or, for a token with sub only,
// every session of the subject. Sessions record the configured issuer, which go-oidc has
// checked against the token's.
func (g *Gateway) revokeLoggedOut(ctx context.Context, c *logoutClaims) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimout)
	defer cancel()
	if c.SID != "" {
		return g.opts.Sessions.RevokeIdPSession(ctx, g.opts.OIDC.Issuer, c.SID)
	}
	return g.opts.Sessions.RevokeSubject(ctx, g.opts.OIDC.Issuer, c.Subject)
}

// badLogoutToken answers 400 {"error":"invalid_request"} and logs why (never the token).
func (g *Gateway) badLogoutToken(w http.ResponseWriter, r *http.Request, err error) error {
	g.log.Info("back-channel logout refused", "ip", g.clientIP(r), "err", err)
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
	return nil
}

// methodNotAllowed answers 405 with an Allow header.
func methodNotAllowed(allow string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return fail(http.StatusMethodNotAllowed, "method_not_allowed", "This method is not allowed here.", nil)
	}
}
