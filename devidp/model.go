package devidp

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request; op sees snapshots made by clone.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	createdAt                               time.Time
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge

	// set by a successful login
	userID, sid string
	authTime    time.Time
	done        bool
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) clone() *authRequest {
	cp := *a
	cp.scopes = slices.Clone(a.scopes)
	if a.challenge != nil {
		ch := *a.challenge
		cp.challenge = &ch
	}
	return &cp
}

func (a *authRequest) GetID() string         { return a.id }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAudience() []string { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.authTime
}
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}

// refreshRequest is the op view of a refresh token during the refresh grant.
type refreshRequest struct{ rec *refreshToken }

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.rec.amr }
func (r *refreshRequest) GetAudience() []string       { return r.rec.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rec.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rec.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.rec.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rec.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.rec.scopes = s }

// client is a confidential web client in dev mode (http loopback redirects, globs).
type client struct {
	id, secret                      string
	redirectURIs, redirectGlobs     []string
	postLogoutURIs, postLogoutGlobs []string
	loginURL                        func(string) string
	idTTL                           time.Duration
}

var _ op.HasRedirectGlobs = (*client)(nil)

func newClient(c Client, loginURL func(string) string, idTTL time.Duration) (*client, error) {
	if c.ID == "" || c.Secret == "" {
		return nil, errors.New("devidp: a client needs an ID and a Secret")
	}
	if len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("devidp: client %q has no redirect URI", c.ID)
	}
	cl := &client{id: c.ID, secret: c.Secret, loginURL: loginURL, idTTL: idTTL}
	var err error
	if cl.redirectURIs, cl.redirectGlobs, err = splitGlobs(c.ID, c.RedirectURIs); err != nil {
		return nil, err
	}
	if cl.postLogoutURIs, cl.postLogoutGlobs, err = splitGlobs(c.ID, c.PostLogoutRedirectURIs); err != nil {
		return nil, err
	}
	return cl, nil
}

// splitGlobs separates exact URIs from glob patterns and checks both.
func splitGlobs(clientID string, uris []string) (exact, globs []string, err error) {
	for _, u := range uris {
		if strings.ContainsAny(u, "*?[{") {
			if _, err := path.Match(u, ""); err != nil {
				return nil, nil, fmt.Errorf("devidp: client %q: bad pattern %q: %w", clientID, u, err)
			}
			globs = append(globs, u)
			continue
		}
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, nil, fmt.Errorf("devidp: client %q: redirect URI %q must be an absolute http(s) URL", clientID, u)
		}
		exact = append(exact, u)
	}
	return exact, globs, nil
}

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string     { return c.postLogoutURIs }
func (c *client) RedirectURIGlobs() []string           { return c.redirectGlobs }
func (c *client) PostLogoutRedirectURIGlobs() []string { return c.postLogoutGlobs }
func (c *client) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
