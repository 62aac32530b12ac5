package devidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	authRequestTTL = 10 * time.Minute
	codeTTL        = 2 * time.Minute
	// pruneEvery spaces out the sweeps of expired entries: a sweep walks every map (refresh
	// tokens live a day), so one per new auth request made each login cost O(live tokens).
	// Lookups check expiry themselves, so a late sweep only delays freeing memory.
	pruneEvery = time.Second
)

var (
	errLoginRequest   = errors.New("devidp: unknown or expired login request")
	errBadCredentials = errors.New("devidp: invalid username or password")
)

type storageOptions struct {
	users            []User
	clients          []Client
	key              crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey, matching alg
	alg              jose.SignatureAlgorithm
	keyID            string
	accessTTL, idTTL time.Duration
	refreshTTL       time.Duration
	loginURL         func(authRequestID string) string
	logger           *slog.Logger
}

// storage is the in-memory op.Storage of the provider. One mutex guards everything.
type storage struct {
	opts    storageOptions
	clients map[string]*client // read-only after newStorage

	mu            sync.Mutex
	usersByName   map[string]*User
	usersByID     map[string]*User
	authRequests  map[string]*authRequest
	codes         map[string]codeEntry
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	rotated       map[string]time.Time // rotated-away refresh token -> when to forget it
	nextPrune     time.Time            // no sweep before this time
	refreshes     int
	reuses        int
}

type codeEntry struct {
	authRequestID string
	issuedAt      time.Time
}

type accessToken struct {
	id, clientID, subject string
	scopes, audience      []string
	expiresAt             time.Time
}

type refreshToken struct {
	token, clientID, subject, sid string
	scopes, audience, amr         []string
	authTime, expiresAt           time.Time
	accessTokenID                 string
}

var _ op.Storage = (*storage)(nil)

func newStorage(opts storageOptions) (*storage, error) {
	s := &storage{
		opts:          opts,
		clients:       make(map[string]*client),
		usersByName:   make(map[string]*User),
		usersByID:     make(map[string]*User),
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]codeEntry),
		accessTokens:  make(map[string]*accessToken),
		refreshTokens: make(map[string]*refreshToken),
		rotated:       make(map[string]time.Time),
	}
	if err := s.addUsers(opts.users); err != nil {
		return nil, err
	}
	if len(opts.clients) == 0 {
		return nil, errors.New("devidp: at least one client is required")
	}
	for _, c := range opts.clients {
		cl, err := newClient(c, opts.loginURL, opts.idTTL)
		if err != nil {
			return nil, err
		}
		if _, dup := s.clients[cl.id]; dup {
			return nil, fmt.Errorf("devidp: duplicate client id %q", cl.id)
		}
		s.clients[cl.id] = cl
	}
	return s, nil
}

// randomID returns n random bytes, base64url encoded (never contains ':').
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// pruneLocked forgets expired auth requests, codes, tokens and rotation records, at most
// once per pruneEvery.
func (s *storage) pruneLocked(now time.Time) {
	if now.Before(s.nextPrune) {
		return
	}
	s.nextPrune = now.Add(pruneEvery)
	for id, ar := range s.authRequests {
		if now.Sub(ar.createdAt) > authRequestTTL {
			delete(s.authRequests, id)
		}
	}
	for code, c := range s.codes {
		if now.Sub(c.issuedAt) > codeTTL {
			delete(s.codes, code)
		}
	}
	for id, at := range s.accessTokens {
		if now.After(at.expiresAt) {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if now.After(rt.expiresAt) {
			delete(s.refreshTokens, tok)
		}
	}
	for tok, forget := range s.rotated {
		if now.After(forget) {
			delete(s.rotated, tok)
		}
	}
}

// CreateAuthRequest stores a validated authorization request. It insists on PKCE S256.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("the development IdP has no single sign-on session")
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	now := time.Now()
	ar := &authRequest{
		id:           randomID(16),
		createdAt:    now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	s.authRequests[ar.id] = ar
	return ar.clone(), nil
}

// AuthRequestByID returns a snapshot of a live auth request.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.liveAuthRequestLocked(id, time.Now())
	if !ok {
		return nil, errLoginRequest
	}
	return ar.clone(), nil
}

func (s *storage) liveAuthRequestLocked(id string, now time.Time) (*authRequest, bool) {
	ar, ok := s.authRequests[id]
	if !ok || now.Sub(ar.createdAt) > authRequestTTL {
		return nil, false
	}
	return ar, true
}

// AuthRequestByCode consumes the code: a code works at most once, even when
// two exchanges race, and also when the first exchange then fails.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entry, ok := s.codes[code]
	delete(s.codes, code)
	now := time.Now()
	if !ok || now.Sub(entry.issuedAt) > codeTTL {
		return nil, errors.New("devidp: code invalid, expired or already used")
	}
	ar, ok := s.liveAuthRequestLocked(entry.authRequestID, now)
	if !ok || !ar.done {
		return nil, errors.New("devidp: code invalid, expired or already used")
	}
	return ar.clone(), nil
}

// SaveAuthCode binds a freshly minted code to its auth request.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[id]; !ok {
		return errLoginRequest
	}
	s.codes[code] = codeEntry{authRequestID: id, issuedAt: time.Now()}
	return nil
}

// DeleteAuthRequest forgets an auth request and every code minted for it.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, entry := range s.codes {
		if entry.authRequestID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// checkLogin marks the auth request done for the user, with a new IdP session id.
func (s *storage) checkLogin(username, password, authRequestID string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	ar, ok := s.liveAuthRequestLocked(authRequestID, now)
	if !ok || ar.done {
		return nil, errLoginRequest
	}
	u, ok := s.usersByName[username]
	// Compare against a dummy when the user is unknown, so both paths cost the same.
	want := "\x00no-such-user"
	if ok {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 || !ok {
		return nil, errBadCredentials
	}
	ar.userID = u.ID
	ar.sid = randomID(16)
	ar.authTime = now
	ar.done = true
	return cloneUser(u), nil
}

// CreateAccessToken issues an access token without a refresh token.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID := clientIDOf(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.newAccessTokenLocked(clientID, req, time.Now())
	return at.id, at.expiresAt, nil
}

func clientIDOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case *authRequest:
		return r.clientID
	case *refreshRequest:
		return r.rec.clientID
	}
	if aud := req.GetAudience(); len(aud) > 0 {
		return aud[0]
	}
	return ""
}

func (s *storage) newAccessTokenLocked(clientID string, req op.TokenRequest, now time.Time) *accessToken {
	at := &accessToken{
		id:        randomID(16),
		clientID:  clientID,
		subject:   req.GetSubject(),
		scopes:    slices.Clone(req.GetScopes()),
		audience:  slices.Clone(req.GetAudience()),
		expiresAt: now.Add(s.opts.accessTTL),
	}
	s.accessTokens[at.id] = at
	return at
}

// CreateAccessAndRefreshTokens issues tokens for a code exchange (currentRefreshToken
// empty) or rotates currentRefreshToken: the old one stops working at once.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if currentRefreshToken == "" {
		ar, ok := req.(*authRequest)
		if !ok {
			return "", "", time.Time{}, fmt.Errorf("devidp: refresh tokens only for the code flow, not %T", req)
		}
		at := s.newAccessTokenLocked(ar.clientID, req, now)
		rt := &refreshToken{
			clientID: ar.clientID, subject: ar.userID, sid: ar.sid,
			scopes: slices.Clone(ar.scopes), audience: ar.GetAudience(), amr: ar.GetAMR(),
			authTime: ar.authTime,
		}
		return at.id, s.storeRefreshLocked(rt, at.id, now), at.expiresAt, nil
	}
	old, err := s.takeRefreshLocked(currentRefreshToken, now)
	if err != nil {
		return "", "", time.Time{}, err
	}
	at := s.newAccessTokenLocked(old.clientID, req, now)
	next := *old
	newToken := s.storeRefreshLocked(&next, at.id, now)
	s.refreshes++
	s.opts.logger.Info("devidp: refresh token rotated", "sub", old.subject, "client_id", old.clientID)
	return at.id, newToken, at.expiresAt, nil
}

func (s *storage) storeRefreshLocked(rt *refreshToken, accessTokenID string, now time.Time) string {
	rt.token = randomID(32)
	rt.accessTokenID = accessTokenID
	rt.expiresAt = now.Add(s.opts.refreshTTL)
	s.refreshTokens[rt.token] = rt
	return rt.token
}

// takeRefreshLocked removes a live refresh token (and its access token) and
// remembers it as rotated. A token rotated before counts as reuse.
func (s *storage) takeRefreshLocked(token string, now time.Time) (*refreshToken, error) {
	rec, ok := s.refreshTokens[token]
	if !ok {
		s.noteReuseLocked(token)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token invalid, expired or already used")
	}
	delete(s.refreshTokens, token)
	delete(s.accessTokens, rec.accessTokenID)
	if now.After(rec.expiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token invalid, expired or already used")
	}
	s.rotated[token] = rec.expiresAt
	return rec, nil
}

func (s *storage) noteReuseLocked(token string) {
	if _, rotated := s.rotated[token]; rotated {
		s.reuses++
		s.opts.logger.Warn("devidp: rotated refresh token presented again")
	}
}

// TokenRequestByRefreshToken looks a live refresh token up for the refresh grant.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refreshTokens[token]
	if !ok || time.Now().After(rec.expiresAt) {
		s.noteReuseLocked(token)
		return nil, errors.New("devidp: refresh token invalid, expired or already used")
	}
	if _, ok := s.usersByID[rec.subject]; !ok {
		return nil, errors.New("devidp: user of refresh token no longer exists")
	}
	cp := *rec
	return &refreshRequest{rec: &cp}, nil
}

// TerminateSession ends every token of userID for clientID.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeWhereLocked(func(rt *refreshToken) bool { return rt.subject == userID && rt.clientID == clientID })
	for id, at := range s.accessTokens {
		if at.subject == userID && at.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	return nil
}

// TerminateSessionFromRequest ends the IdP session named by the id_token_hint's
// sid (or all of the user's tokens without one) and returns where to redirect.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims != nil && req.IDTokenHintClaims.SessionID != "" {
		sid := req.IDTokenHintClaims.SessionID
		s.mu.Lock()
		s.revokeWhereLocked(func(rt *refreshToken) bool { return rt.sid == sid })
		s.mu.Unlock()
		s.opts.logger.Info("devidp: session ended", "sub", req.UserID)
		return req.RedirectURI, nil
	}
	if req.UserID != "" {
		if err := s.TerminateSession(ctx, req.UserID, req.ClientID); err != nil {
			return "", err
		}
	}
	return req.RedirectURI, nil
}

func (s *storage) revokeWhereLocked(match func(*refreshToken) bool) {
	for tok, rt := range s.refreshTokens {
		if match(rt) {
			delete(s.refreshTokens, tok)
			delete(s.accessTokens, rt.accessTokenID)
		}
	}
}

// GetRefreshTokenInfo identifies a refresh token for the revocation endpoint.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rec.subject, rec.token, nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by value).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		delete(s.accessTokens, rt.accessTokenID)
	}
	return nil // unknown tokens: already "revoked" (RFC 7009)
}

func (s *storage) refreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func (s *storage) reuseCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuses
}
