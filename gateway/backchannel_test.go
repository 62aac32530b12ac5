package gateway

import (
	"encoding/base64"
	"testing"
)

func TestCheckLogoutTyp(t *testing.T) {
	tok := func(header string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(header)) + ".e30.sig"
	}
	tests := []struct {
		name    string
		token   string
		wantErr bool
	}{
		{name: "logout+jwt", token: tok(`{"alg":"RS256","typ":"logout+jwt"}`)},
		{name: "media type form", token: tok(`{"alg":"RS256","typ":"application/logout+jwt"}`)},
		{name: "JWT", token: tok(`{"alg":"RS256","typ":"JWT"}`)},
		{name: "no typ", token: tok(`{"alg":"RS256"}`)},
		{name: "case-insensitive", token: tok(`{"alg":"RS256","typ":"Logout+JWT"}`)},
		{name: "access token", token: tok(`{"alg":"RS256","typ":"at+jwt"}`), wantErr: true},
		{name: "empty typ", token: tok(`{"alg":"RS256","typ":""}`), wantErr: true},
		{name: "typ not a string", token: tok(`{"alg":"RS256","typ":1}`), wantErr: true},
		{name: "header not JSON", token: tok(`nope`), wantErr: true},
		{name: "header not base64url", token: "%%%.e30.sig", wantErr: true},
		{name: "no dot", token: "abc", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkLogoutTyp(tt.token); (err != nil) != tt.wantErr {
				t.Errorf("checkLogoutTyp = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
