package devidp

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// TestSigningAlgorithm logs in with each supported key type and checks that the ID token,
// discovery and /keys agree on the algorithm, and that a relying party pinned to the other
// algorithm refuses the token.
func TestSigningAlgorithm(t *testing.T) {
	tests := []struct {
		name, opt string
		want      jose.SignatureAlgorithm
		kty       string
		other     string
	}{
		{name: "default is RS256", opt: "", want: jose.RS256, kty: "RSA", other: oidc.ES256},
		{name: "RS256", opt: "RS256", want: jose.RS256, kty: "RSA", other: oidc.ES256},
		{name: "ES256", opt: "ES256", want: jose.ES256, kty: "EC", other: oidc.RS256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnvAlg(t, "", tt.opt)
			tok, _, _ := e.login("alice", "alice")
			raw, _ := tok.Extra("id_token").(string)
			jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatalf("parse id_token: %v", err)
			}
			if got := jws.Signatures[0].Header.Algorithm; got != string(tt.want) {
				t.Errorf("id_token alg = %s, want %s", got, tt.want)
			}
			var disc struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := e.rp.Claims(&disc); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(disc.Algs, []string{string(tt.want)}) {
				t.Errorf("discovery algs = %v, want [%s]", disc.Algs, tt.want)
			}
			var keys jose.JSONWebKeySet
			getJSON(t, e, e.issuer+"/keys", &keys)
			if len(keys.Keys) != 1 || keys.Keys[0].Algorithm != string(tt.want) || keyType(keys.Keys[0]) != tt.kty ||
				keys.Keys[0].KeyID != jws.Signatures[0].Header.KeyID {
				t.Errorf("keys = %+v, want one %s %s key with the token's kid", keys.Keys, tt.kty, tt.want)
			}
			pinned := e.rp.Verifier(&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{tt.other}})
			if _, err := pinned.Verify(e.ctx, raw); err == nil {
				t.Errorf("a verifier accepting only %s accepted a %s token", tt.other, tt.want)
			}
		})
	}
}

func keyType(k jose.JSONWebKey) string {
	b, err := k.MarshalJSON()
	if err != nil {
		return ""
	}
	var v struct {
		Kty string `json:"kty"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Kty
}

func getJSON(t *testing.T, e *env, u string, v any) {
	t.Helper()
	resp, err := e.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
