package devidp

import (
	"encoding/json"
	"testing"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

func TestNewValidatesOptions(t *testing.T) {
	good := []Client{{ID: "c", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:*/cb"}}}
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "http loopback", opts: Options{Issuer: "http://127.0.0.1:9000", Clients: good}},
		{name: "http localhost with path", opts: Options{Issuer: "http://localhost:9000/idp/", Clients: good}},
		{name: "https anywhere", opts: Options{Issuer: "https://idp.example.com", Clients: good}},
		{name: "http non-loopback", opts: Options{Issuer: "http://idp.example.com", Clients: good}, wantErr: true},
		{name: "query in issuer", opts: Options{Issuer: "https://idp.example.com/?x=1", Clients: good}, wantErr: true},
		{name: "no clients", opts: Options{Issuer: "https://idp.example.com"}, wantErr: true},
		{name: "client without secret", opts: Options{Issuer: "https://idp.example.com", Clients: []Client{{ID: "c", RedirectURIs: []string{"https://a/cb"}}}}, wantErr: true},
		{name: "relative redirect", opts: Options{Issuer: "https://idp.example.com", Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{"/cb"}}}}, wantErr: true},
		{name: "duplicate usernames", opts: Options{Issuer: "https://idp.example.com", Clients: good, Users: []User{{ID: "a", Username: "x"}, {ID: "b", Username: "x"}}}, wantErr: true},
		{name: "ES256 key", opts: Options{Issuer: "https://idp.example.com", Clients: good, SigningAlgorithm: "ES256"}},
		{name: "unsupported signing algorithm", opts: Options{Issuer: "https://idp.example.com", Clients: good, SigningAlgorithm: "HS256"}, wantErr: true},
		{name: "colon in user id", opts: Options{Issuer: "https://idp.example.com", Clients: good, Users: []User{{ID: "a:b", Username: "x"}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestEmailVerifiedFalseIsExplicit(t *testing.T) {
	var info = new(struct {
		EmailVerified *bool `json:"email_verified"`
	})
	u := &User{ID: "u", Username: "u", Email: "u@example.com"}
	ui := new(zoidc.UserInfo)
	fillUserinfo(ui, u, []string{zoidc.ScopeEmail})
	b, err := json.Marshal(ui)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, info); err != nil {
		t.Fatal(err)
	}
	if info.EmailVerified == nil || *info.EmailVerified {
		t.Fatalf("email_verified in %s, want explicit false", b)
	}
}
