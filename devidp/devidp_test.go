package devidp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClientID    = "authgate"
	testSecret      = "test-secret-0123456789"
	testRedirectURI = "http://127.0.0.1:4180/.auth/callback"
)

// env is one running provider plus a relying party pointed at it.
type env struct {
	t        *testing.T
	p        *Provider
	issuer   string
	ctx      context.Context
	http     *http.Client
	rp       *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// startEnv serves a provider on a loopback httptest server, below issuerPath.
func startEnv(t *testing.T, issuerPath string) *env {
	t.Helper()
	return startEnvAlg(t, issuerPath, "")
}

// startEnvAlg is startEnv with Options.SigningAlgorithm = alg.
func startEnvAlg(t *testing.T, issuerPath, alg string) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + issuerPath
	p, err := New(Options{
		Issuer: issuer, SigningAlgorithm: alg,
		Clients: []Client{{
			ID: testClientID, Secret: testSecret,
			RedirectURIs:           []string{"http://127.0.0.1:*/.auth/callback"},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:*/*"},
		}},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(strings.TrimSuffix(issuerPath, "/")+"/", p.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		// Stop at the relying party's callback: nothing listens there.
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/.auth/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	ctx := oidc.ClientContext(context.Background(), client)
	rp, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	endpoint := rp.Endpoint()
	// Explicit style: AutoDetect retries a refused request in the body, which
	// would present the same refresh token twice.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &env{
		t: t, p: p, issuer: issuer, ctx: ctx, http: client, rp: rp,
		conf: oauth2.Config{
			ClientID: testClientID, ClientSecret: testSecret, Endpoint: endpoint,
			RedirectURL: testRedirectURI,
			Scopes:      []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
		},
		verifier: rp.Verifier(&oidc.Config{ClientID: testClientID}),
	}
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// authorize starts a code flow and returns the login page response and the PKCE values.
func (e *env) authorize() (loginURL *url.URL, body string, state, nonce, verifier string) {
	e.t.Helper()
	state, nonce, verifier = randomString(e.t), randomString(e.t), oauth2.GenerateVerifier()
	authURL := e.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	resp, err := e.http.Get(authURL)
	if err != nil {
		e.t.Fatalf("GET authorize: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("login page status = %d, want 200; body %s", resp.StatusCode, b)
	}
	return resp.Request.URL, string(b), state, nonce, verifier
}

// submitLogin posts the login form and returns the final response (callback redirect or error page).
func (e *env) submitLogin(loginURL *url.URL, username, password string) *http.Response {
	e.t.Helper()
	form := url.Values{
		"authRequestID": {loginURL.Query().Get("authRequestID")},
		"username":      {username},
		"password":      {password},
	}
	resp, err := e.http.PostForm(loginURL.String(), form)
	if err != nil {
		e.t.Fatalf("POST login: %v", err)
	}
	return resp
}

type idClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
	Groups        []string `json:"groups"`
	SID           string   `json:"sid"`
}

// login runs the whole code+PKCE flow for a user and returns the verified tokens.
func (e *env) login(username, password string) (*oauth2.Token, *oidc.IDToken, idClaims) {
	e.t.Helper()
	loginURL, _, state, nonce, verifier := e.authorize()
	resp := e.submitLogin(loginURL, username, password)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("after login status = %d, want 302 to the callback", resp.StatusCode)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	if got := cb.Query().Get("state"); got != state {
		e.t.Fatalf("callback state = %q, want %q", got, state)
	}
	tok, err := e.conf.Exchange(e.ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	idt, claims := e.verifyIDToken(tok)
	if idt.Nonce != nonce {
		e.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	return tok, idt, claims
}

func (e *env) verifyIDToken(tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	e.t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		e.t.Fatal("token response has no id_token")
	}
	idt, err := e.verifier.Verify(e.ctx, raw)
	if err != nil {
		e.t.Fatalf("verify id_token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		e.t.Fatal(err)
	}
	return idt, c
}

func (e *env) refresh(refreshToken string) (*oauth2.Token, error) {
	e.t.Helper()
	ts := e.conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)})
	return ts.Token()
}

func wantInvalidGrant(t *testing.T, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("error = %v, want invalid_grant", err)
	}
}

func TestCodeFlowWithPKCE(t *testing.T) {
	tests := []struct {
		name, issuerPath, username, password string
		want                                 idClaims
	}{
		{
			name: "alice at root issuer", username: "alice", password: "alice",
			want: idClaims{Subject: "user-alice", Email: "alice@example.com", Name: "Alice Example", Roles: []string{"super_admin"}, Groups: []string{"admins"}},
		},
		{
			name: "bob below a path issuer", issuerPath: "/idp", username: "bob", password: "bob",
			want: idClaims{Subject: "user-bob", Email: "bob@example.com", Name: "Bob Example", Roles: []string{"viewer"}, Groups: []string{"staff"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, tt.issuerPath)
			tok, idt, got := e.login(tt.username, tt.password)
			if got.Subject != tt.want.Subject || got.Email != tt.want.Email || got.Name != tt.want.Name ||
				!slices.Equal(got.Roles, tt.want.Roles) || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Errorf("claims = %+v, want %+v", got, tt.want)
			}
			if got.EmailVerified == nil || !*got.EmailVerified {
				t.Errorf("email_verified = %v, want true", got.EmailVerified)
			}
			if got.SID == "" {
				t.Error("sid claim missing")
			}
			if idt.Issuer != e.issuer || !slices.Equal(idt.Audience, []string{testClientID}) {
				t.Errorf("iss/aud = %q/%v, want %q/[%s]", idt.Issuer, idt.Audience, e.issuer, testClientID)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token issued with offline_access")
			}
			ui, err := e.rp.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if ui.Subject != tt.want.Subject || ui.Email != tt.want.Email {
				t.Errorf("userinfo sub/email = %q/%q, want %q/%q", ui.Subject, ui.Email, tt.want.Subject, tt.want.Email)
			}
		})
	}
}

func TestLoginPageAndSIDPerLogin(t *testing.T) {
	e := startEnv(t, "")
	_, body, _, _, _ := e.authorize()
	for _, id := range []string{`id="username"`, `id="password"`, `id="submit"`} {
		if !strings.Contains(body, id) {
			t.Errorf("login page lacks %s", id)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("login page references external URLs; it must be self-contained")
	}
	_, _, first := e.login("alice", "alice")
	_, _, second := e.login("alice", "alice")
	if first.SID == second.SID {
		t.Errorf("sid %q reused across logins, want a new one per login", first.SID)
	}
}

func TestWrongCredentialsRejected(t *testing.T) {
	tests := []struct{ name, username, password string }{
		{name: "wrong password", username: "alice", password: "bob"},
		{name: "unknown user", username: "mallory", password: "alice"},
		{name: "empty password", username: "alice", password: ""},
	}
	e := startEnv(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loginURL, _, _, _, _ := e.authorize()
			resp := e.submitLogin(loginURL, tt.username, tt.password)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			if !strings.Contains(string(b), "Invalid username or password") {
				t.Errorf("error message missing from page")
			}
			// The auth request is not done: the op callback must refuse to mint a code.
			cb := strings.TrimSuffix(e.issuer, "/") + "/authorize/callback?id=" + url.QueryEscape(loginURL.Query().Get("authRequestID"))
			resp, err := e.http.Get(cb)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") {
				t.Fatalf("callback issued a code after a failed login: %s", loc)
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	e := startEnv(t, "")
	tok, _, first := e.login("alice", "alice")

	e.p.SetUserRoles("alice", []string{"viewer", "editor"})
	second, err := e.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	_, claims := e.verifyIDToken(second)
	if claims.SID != first.SID || claims.Subject != first.Subject {
		t.Errorf("refreshed sid/sub = %q/%q, want %q/%q", claims.SID, claims.Subject, first.SID, first.Subject)
	}
	if !slices.Equal(claims.Roles, []string{"viewer", "editor"}) {
		t.Errorf("refreshed roles = %v, want the updated roles", claims.Roles)
	}
	if got := e.p.RefreshCount(); got != 1 {
		t.Errorf("RefreshCount = %d, want 1", got)
	}

	_, err = e.refresh(tok.RefreshToken)
	wantInvalidGrant(t, err)
	if got, reuse := e.p.RefreshCount(), e.p.RefreshReuseCount(); got != 1 || reuse != 1 {
		t.Errorf("RefreshCount/RefreshReuseCount = %d/%d, want 1/1", got, reuse)
	}

	if _, err := e.refresh(second.RefreshToken); err != nil {
		t.Fatalf("refresh with the rotated-in token: %v", err)
	}
	if got := e.p.RefreshCount(); got != 2 {
		t.Errorf("RefreshCount = %d, want 2", got)
	}
	_, err = e.refresh("never-issued")
	wantInvalidGrant(t, err)
	if got := e.p.RefreshReuseCount(); got != 1 {
		t.Errorf("RefreshReuseCount = %d after an unknown token, want still 1", got)
	}
}

func TestConcurrentRefreshOneWinner(t *testing.T) {
	e := startEnv(t, "")
	tok, _, _ := e.login("bob", "bob")
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.refresh(tok.RefreshToken)
			errs <- err
		}()
	}
	var ok int
	for range n {
		if err := <-errs; err == nil {
			ok++
		} else {
			wantInvalidGrant(t, err)
		}
	}
	if ok != 1 || e.p.RefreshCount() != 1 || e.p.RefreshReuseCount() != n-1 {
		t.Fatalf("successes/RefreshCount/RefreshReuseCount = %d/%d/%d, want 1/1/%d", ok, e.p.RefreshCount(), e.p.RefreshReuseCount(), n-1)
	}
}

func TestCodeIsSingleUseAndPKCEEnforced(t *testing.T) {
	e := startEnv(t, "")
	loginURL, _, _, _, verifier := e.authorize()
	resp := e.submitLogin(loginURL, "bob", "bob")
	resp.Body.Close()
	cb, _ := url.Parse(resp.Header.Get("Location"))
	code := cb.Query().Get("code")

	_, err := e.conf.Exchange(e.ctx, code, oauth2.VerifierOption("wrong-"+verifier))
	wantInvalidGrant(t, err)
	_, err = e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	wantInvalidGrant(t, err) // burned by the failed attempt

	// Without a code_challenge the authorize request is refused back to the client.
	resp, err = e.http.Get(e.conf.AuthCodeURL("s1", oidc.Nonce("n1")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("authorize without PKCE: status %d location %q, want 302 with error=invalid_request", resp.StatusCode, loc)
	}
}

func TestEndSessionAndRevocation(t *testing.T) {
	e := startEnv(t, "")
	var disc struct {
		EndSession string   `json:"end_session_endpoint"`
		Revocation string   `json:"revocation_endpoint"`
		AuthMethod []string `json:"token_endpoint_auth_methods_supported"`
		PKCE       []string `json:"code_challenge_methods_supported"`
	}
	if err := e.rp.Claims(&disc); err != nil {
		t.Fatal(err)
	}
	if disc.EndSession == "" || disc.Revocation == "" || !slices.Contains(disc.AuthMethod, "client_secret_basic") || !slices.Contains(disc.PKCE, "S256") {
		t.Fatalf("discovery = %+v, want end_session, revocation, client_secret_basic and S256", disc)
	}

	ended, _, _ := e.login("alice", "alice")
	kept, _, _ := e.login("alice", "alice")
	q := url.Values{
		"id_token_hint":            {ended.Extra("id_token").(string)},
		"post_logout_redirect_uri": {"http://127.0.0.1:4180/"},
		"state":                    {"bye"},
	}
	noFollow := *e.http
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(disc.EndSession + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "http://127.0.0.1:4180/?state=bye" {
		t.Fatalf("end_session: status %d location %q", resp.StatusCode, loc)
	}
	_, err = e.refresh(ended.RefreshToken)
	wantInvalidGrant(t, err)
	kept2, err := e.refresh(kept.RefreshToken)
	if err != nil {
		t.Fatalf("other IdP session must survive end_session of one sid: %v", err)
	}

	req, _ := http.NewRequest(http.MethodPost, disc.Revocation, strings.NewReader(url.Values{"token": {kept2.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testSecret)
	resp, err = e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke status = %d, want 200", resp.StatusCode)
	}
	_, err = e.refresh(kept2.RefreshToken)
	wantInvalidGrant(t, err)
	if got := e.p.RefreshReuseCount(); got != 0 {
		t.Errorf("RefreshReuseCount = %d, want 0 (ended and revoked tokens are not reuse)", got)
	}
}

func TestWrongClientSecret(t *testing.T) {
	e := startEnv(t, "")
	tok, _, _ := e.login("alice", "alice")
	e.conf.ClientSecret = "wrong"
	_, err := e.refresh(tok.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("error = %v, want invalid_client", err)
	}
}
