package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzBearerToken feeds arbitrary Authorization headers through the pre-verification parsing
// of bearer tokens: it must never panic, and a token it passes on has no whitespace and is
// three dot-separated parts whose header decodes.
func FuzzBearerToken(f *testing.F) {
	seed := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://idp.example"}`)) + ".sig"
	for _, s := range []string{"Bearer " + seed, "bearer  x.y.z", "Basic abc", "Bearer", "Bearer a b", "Bearer ..", "Bearer " + strings.Repeat("a", 9000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Authorization": {header}}}
		tok, berr := bearerToken(r)
		if berr != nil {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") {
			t.Fatalf("bearerToken(%q) = %q", header, tok)
		}
		h, _, perr := peekJWT(tok)
		if perr != nil {
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("peekJWT accepted %d parts", len(parts))
		}
		var again jwtHeader
		b, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if json.Unmarshal(b, &again) != nil || again != h {
			t.Fatalf("peekJWT header %+v does not match %q", h, parts[0])
		}
	})
}

// FuzzLogoutTyp checks the typ rule of back-channel logout tokens on arbitrary input: never a
// panic, and a token is accepted only with typ logout+jwt, JWT, or no typ at all.
func FuzzLogoutTyp(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) + ".e30.sig" }
	for _, s := range []string{enc(`{"alg":"RS256","typ":"logout+jwt"}`), enc(`{"alg":"RS256"}`), enc(`{"typ":"at+jwt"}`), "x", "..", enc(`{"typ":null}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkLogoutTyp(raw) != nil {
			return
		}
		head, _, _ := strings.Cut(raw, ".")
		b, err := base64.RawURLEncoding.DecodeString(head)
		if err != nil {
			t.Fatalf("accepted an undecodable header %q", head)
		}
		var h map[string]any
		if json.Unmarshal(b, &h) != nil {
			t.Fatalf("accepted a header that is not a JSON object: %q", b)
		}
		typ, present := h["typ"]
		if !present || typ == nil {
			return
		}
		s, _ := typ.(string)
		switch strings.ToLower(s) {
		case "logout+jwt", "application/logout+jwt", "jwt":
		default:
			t.Fatalf("accepted typ %q", s)
		}
	})
}
