package bench

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/authgate/authgate/session"
)

// Token sizes of a typical login, in characters: RS256 JWTs for the ID and access tokens (a
// JOSE header, a JSON payload of the usual claims and a 256-byte signature, base64url), an
// opaque refresh token. They set the size of the sealed token blob in a session record.
// SampleRecord pads the JWTs' nonce and jti claims with random characters to these lengths;
// a user number too long for that gives longer tokens.
const (
	IDTokenLen      = 1050
	AccessTokenLen  = 1020
	RefreshTokenLen = 120
)

// UserIDPrefix starts the UserID of every SampleRecord.
const UserIDPrefix = "0b7c6f5e-2a41-4d8e-9c3b-"

const (
	sampleIssuer   = "https://idp.example.com/realms/main"
	sampleClientID = "authgate"
	sampleKeyID    = "Xq3vJ0m2Rk9sT7wYbN4cLp8eHf6aUd1iGz5oWj0nKyM" // an RFC 7638 thumbprint's length
	minPadLen      = 16                                            // nonce and jti: at least this long
)

// SampleRecord is a session record of user i with realistic fields and tokens: the ID and
// access tokens are JWTs whose payloads carry the usual OIDC claims and the record's own
// identity values (as an IdP issues them), their signatures and the refresh token random, so
// the tokens compress as much as real ones do (session's token format 3). The caller saves
// it with session.Store.Save.
func SampleRecord(i int) *session.Record {
	rec := &session.Record{
		UserID: fmt.Sprintf(UserIDPrefix+"%012d", i), Subject: fmt.Sprintf("user-%d", i), Issuer: sampleIssuer,
		Email: fmt.Sprintf("user%d@example.com", i), EmailVerified: true, Name: fmt.Sprintf("User Number %d", i),
		Roles: []string{"viewer"}, Groups: []string{"staff"}, IdPSessionID: randomToken(22), Provider: "default",
		RefreshToken: randomToken(RefreshTokenLen),
		IP:           "192.0.2.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	}
	iat := time.Now().Unix()
	rec.IDToken = sampleJWT("JWT", IDTokenLen, func(nonce string) any {
		return idClaims{Iss: rec.Issuer, Sub: rec.Subject, Aud: sampleClientID, Exp: iat + 300, Iat: iat,
			AuthTime: iat, Nonce: nonce, AtHash: randomToken(22), Azp: sampleClientID, Sid: rec.IdPSessionID,
			Email: rec.Email, EmailVerified: true, Name: rec.Name, PreferredUsername: rec.Subject,
			GivenName: "User", FamilyName: fmt.Sprintf("Number %d", i), Roles: rec.Roles, Groups: rec.Groups}
	})
	rec.AccessToken = sampleJWT("at+jwt", AccessTokenLen, func(jti string) any {
		return accessClaims{Iss: rec.Issuer, Sub: rec.Subject, Aud: []string{"https://api.example.com", "account"},
			Exp: iat + 300, Iat: iat, Jti: jti, ClientID: sampleClientID, Azp: sampleClientID,
			Scope: "openid profile email offline_access", Sid: rec.IdPSessionID, Email: rec.Email,
			Name: rec.Name, PreferredUsername: rec.Subject, Roles: rec.Roles, Groups: rec.Groups}
	})
	return rec
}

// idClaims and accessClaims are the payloads of the sample tokens, in an IdP's claim order.
type idClaims struct {
	Iss               string   `json:"iss"`
	Sub               string   `json:"sub"`
	Aud               string   `json:"aud"`
	Exp               int64    `json:"exp"`
	Iat               int64    `json:"iat"`
	AuthTime          int64    `json:"auth_time"`
	Nonce             string   `json:"nonce"`
	AtHash            string   `json:"at_hash"`
	Azp               string   `json:"azp"`
	Sid               string   `json:"sid"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	GivenName         string   `json:"given_name"`
	FamilyName        string   `json:"family_name"`
	Roles             []string `json:"roles"`
	Groups            []string `json:"groups"`
}

type accessClaims struct {
	Iss               string   `json:"iss"`
	Sub               string   `json:"sub"`
	Aud               []string `json:"aud"`
	Exp               int64    `json:"exp"`
	Iat               int64    `json:"iat"`
	Jti               string   `json:"jti"`
	ClientID          string   `json:"client_id"`
	Azp               string   `json:"azp"`
	Scope             string   `json:"scope"`
	Sid               string   `json:"sid"`
	Email             string   `json:"email"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Roles             []string `json:"roles"`
	Groups            []string `json:"groups"`
}

// sampleJWT is an RS256 JWT of type typ, n characters long where it can be: header, the
// payload claims(pad) with pad random characters sized to reach n (at least minPadLen), and a
// random 256-byte signature.
func sampleJWT(typ string, n int, claims func(pad string) any) string {
	header := b64JSON(map[string]string{"alg": "RS256", "kid": sampleKeyID, "typ": typ})
	sig := randomToken(base64.RawURLEncoding.EncodedLen(256)) // 342 characters
	// The payload's base64url length wanted, and the JSON bytes that encode to it (within one
	// character: a length of 4k+1 does not exist).
	want := n - len(header) - len(sig) - 2
	base := len(mustJSON(claims("")))
	pad := max(want*3/4-base, minPadLen)
	return header + "." + b64JSON(claims(randomToken(pad + 3)[:pad])) + "." + sig
}

func b64JSON(v any) string { return base64.RawURLEncoding.EncodeToString(mustJSON(v)) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the claim types always marshal
	}
	return b
}

// randomToken is the base64url of n*3/4 bytes from crypto/rand: n characters (n-1 for n of
// 4k+1), canonical (no stray padding bits) as an IdP encodes its random values.
func randomToken(n int) string {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
