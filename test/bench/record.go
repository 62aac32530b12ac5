package bench

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/authgate/authgate/session"
)

// Token sizes of a typical login (RS256 JWTs for the ID and access tokens, an opaque refresh
// token), in characters. They set the size of the sealed token blob in a session record.
const (
	IDTokenLen      = 1000
	AccessTokenLen  = 900
	RefreshTokenLen = 120
)

// UserIDPrefix starts the UserID of every SampleRecord.
const UserIDPrefix = "0b7c6f5e-2a41-4d8e-9c3b-"

// SampleRecord is a session record of user i with realistic field and token sizes (random
// token bytes, so nothing compresses). The caller saves it with session.Store.Save.
func SampleRecord(i int) *session.Record {
	uid := fmt.Sprintf(UserIDPrefix+"%012d", i)
	return &session.Record{
		UserID: uid, Subject: fmt.Sprintf("user-%d", i), Issuer: "https://idp.example.com/",
		Email: fmt.Sprintf("user%d@example.com", i), EmailVerified: true, Name: fmt.Sprintf("User Number %d", i),
		Roles: []string{"viewer"}, Groups: []string{"staff"}, IdPSessionID: randomToken(22), Provider: "default",
		IDToken: randomToken(IDTokenLen), AccessToken: randomToken(AccessTokenLen),
		RefreshToken: randomToken(RefreshTokenLen),
		IP:           "192.0.2.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	}
}

// randomToken is n characters of base64url from crypto/rand.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
