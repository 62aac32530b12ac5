package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgate/authgate/session"
)

const (
	flowTTL     = 10 * time.Minute // how long a login may take at the IdP
	idpTimeout  = 10 * time.Second // token exchange and ID token verification
	storeTimout = 3 * time.Second  // session/flow writes and the user upsert on the login path
	providerID  = "default"        // the one configured IdP; flows record it for multi-IdP later
	bindingLen  = 43               // base64url of 32 random bytes
	clockSkew   = 60 * time.Second // tolerated clock difference with the IdP (iat)
)

// login starts an authorization code flow with PKCE (S256), state and nonce. The flow is
// stored server-side under its state and bound to this browser by the login-flow cookie, so
// several logins in flight in one browser (two tabs) each complete.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) error {
	returnTo := "/"
	if v := r.URL.Query()["return_to"]; len(v) == 1 {
		returnTo = SafeReturnTo(v[0])
	}
	d, err := g.idp.get()
	if err != nil {
		return fail(http.StatusServiceUnavailable, "idp_unavailable", "The identity provider cannot be reached. Please try again shortly.", err)
	}
	binding := g.browserBinding(w, r)
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	ctx, cancel := context.WithTimeout(r.Context(), storeTimout)
	defer cancel()
	if err := g.capFlows(ctx, r, w, binding); err != nil {
		return err
	}
	err = g.opts.Sessions.PutFlow(ctx, state, session.Flow{
		Nonce: nonce, Verifier: verifier, ReturnTo: returnTo, Provider: providerID,
		Binding: hashString(binding), CreatedAt: g.now(),
	}, flowTTL)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for k, v := range g.opts.OIDC.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	http.Redirect(w, r, d.oauth.AuthCodeURL(state, opts...), http.StatusFound)
	return nil
}

// browserBinding returns the value of the login-flow cookie, setting a new one when the
// browser has none (or a malformed one). Its hash is stored with each flow; the callback
// accepts a state only from the browser that started it.
func (g *Gateway) browserBinding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(g.txCookie); err == nil && len(c.Value) == bindingLen && isBase64URL(c.Value) {
		return c.Value
	}
	v := randomToken()
	sameSite := http.SameSiteLaxMode
	if g.opts.SameSite == http.SameSiteNoneMode {
		sameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, &http.Cookie{
		Name: g.txCookie, Value: v, Path: "/", MaxAge: int(flowTTL / time.Second),
		HttpOnly: true, Secure: g.opts.Secure, SameSite: sameSite,
	})
	return v
}

// randomToken returns 32 bytes from crypto/rand, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on failure)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func equalHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// errStoreUnavailable reports whether err means a store could not be reached.
func errStoreUnavailable(err error) bool {
	return errors.Is(err, session.ErrUnavailable)
}
