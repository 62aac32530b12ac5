package devidp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	claimRoles  = "roles"
	claimGroups = "groups"
	claimSID    = "sid"
)

func cloneUser(u *User) *User {
	cp := *u
	cp.Roles = slices.Clone(u.Roles)
	cp.Groups = slices.Clone(u.Groups)
	return &cp
}

func (s *storage) addUsers(users []User) error {
	for i := range users {
		u := cloneUser(&users[i])
		if u.ID == "" || u.Username == "" {
			return fmt.Errorf("devidp: user #%d needs an ID and a Username", i)
		}
		if strings.Contains(u.ID, ":") {
			return fmt.Errorf("devidp: user ID %q must not contain ':'", u.ID)
		}
		if _, dup := s.usersByID[u.ID]; dup {
			return fmt.Errorf("devidp: duplicate user ID %q", u.ID)
		}
		if _, dup := s.usersByName[u.Username]; dup {
			return fmt.Errorf("devidp: duplicate username %q", u.Username)
		}
		s.usersByID[u.ID] = u
		s.usersByName[u.Username] = u
	}
	return nil
}

func (s *storage) setUserRoles(username string, roles []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.usersByName[username]; ok {
		u.Roles = roles
	}
}

// fillUserinfo sets the claims the scopes allow, plus roles and groups always.
func fillUserinfo(info *oidc.UserInfo, u *User, scopes []string) {
	info.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified)
		// oidc.Bool is omitempty: state false explicitly.
		info.AppendClaims("email_verified", u.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.Username
	}
	info.AppendClaims(claimRoles, nonNil(u.Roles))
	info.AppendClaims(claimGroups, nonNil(u.Groups))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func (s *storage) userByID(id string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.usersByID[id]
	if !ok {
		return nil, errors.New("devidp: user not found")
	}
	return cloneUser(u), nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token claims, including the IdP session id.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, err := s.userByID(req.GetSubject())
	if err != nil {
		return err
	}
	fillUserinfo(info, u, scopes)
	var sid string
	switch r := req.(type) {
	case *authRequest:
		sid = r.sid
	case *refreshRequest:
		sid = r.rec.sid
	}
	if sid != "" {
		info.AppendClaims(claimSID, sid)
	}
	return nil
}

var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

func (s *storage) liveAccessToken(tokenID string) (*accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || time.Now().After(at.expiresAt) {
		return nil, errors.New("devidp: access token invalid or expired")
	}
	cp := *at
	return &cp, nil
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if at.subject != subject {
		return errors.New("devidp: access token subject mismatch")
	}
	u, err := s.userByID(at.subject)
	if err != nil {
		return err
	}
	fillUserinfo(info, u, at.scopes)
	return nil
}

// SetIntrospectionFromToken answers the introspection endpoint for the token's own client.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if at.clientID != clientID || at.subject != subject {
		return errors.New("devidp: token not issued to this client")
	}
	u, err := s.userByID(at.subject)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	fillUserinfo(info, u, at.scopes)
	resp.SetUserInfo(info)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.Expiration = oidc.FromTime(at.expiresAt)
	return nil
}

// GetPrivateClaimsFromScopes: access tokens are opaque, so no JWT claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetClientByClientID returns the registered client.
func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, errUnknownClient
	}
	return c, nil
}

// AuthorizeClientIDSecret checks client_secret_basic credentials in constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	c, ok := s.clients[clientID]
	if !ok {
		return errUnknownClient
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
		return errBadSecret
	}
	return nil
}

// GetKeyByIDAndClientID: JWT profile grants are not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devidp: JWT profile is not supported")
}

// ValidateJWTProfileScopes: JWT profile grants are not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devidp: JWT profile is not supported")
}

// Health always reports healthy: everything is in memory.
func (s *storage) Health(context.Context) error { return nil }

type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.s.opts.alg }
func (k signingKey) Key() any                                    { return k.s.opts.key }
func (k signingKey) ID() string                                  { return k.s.opts.keyID }

type publicKey struct{ s *storage }

func (k publicKey) ID() string                         { return k.s.opts.keyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.s.opts.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.s.opts.key.Public() }

// SigningKey is the key generated at New (RS256 or ES256).
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s}, nil }

// SignatureAlgorithms lists the one algorithm of the signing key.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.opts.alg}, nil
}

// KeySet is the public half of the signing key, served at /keys.
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s}}, nil }
