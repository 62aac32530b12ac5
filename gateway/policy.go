package gateway

import (
	"slices"
	"strings"
)

// Identity is what the gateway knows of the person behind a request. It is built from the
// session record, never from anything the client sent.
type Identity struct {
	UserID, Subject, Issuer string
	Email                   string
	EmailVerified           bool
	Name                    string
	Roles, Groups           []string
}

// Policy is the access rule of a route. The zero value requires an authenticated session.
//
// With any of Roles, Groups, Emails or EmailDomains set, the identity must match at least one
// entry of at least one list. Emails and EmailDomains are only ever satisfied by a verified
// email address (email_verified true at the IdP).
type Policy struct {
	Public       bool
	Roles        []string
	Groups       []string
	Emails       []string
	EmailDomains []string
}

// restricted reports whether the policy asks for more than an authenticated session.
func (p Policy) restricted() bool {
	return len(p.Roles)+len(p.Groups)+len(p.Emails)+len(p.EmailDomains) > 0
}

// Allows reports whether id satisfies the policy. It must only be called with an identity
// from a live session; public routes do not call it.
func (p Policy) Allows(id *Identity) bool {
	if p.Public {
		return true
	}
	if id == nil {
		return false
	}
	if !p.restricted() {
		return true
	}
	for _, r := range p.Roles {
		if slices.Contains(id.Roles, r) {
			return true
		}
	}
	for _, g := range p.Groups {
		if slices.Contains(id.Groups, g) {
			return true
		}
	}
	if !id.EmailVerified {
		return false
	}
	email, ok := canonicalEmail(id.Email)
	if !ok {
		return false
	}
	for _, e := range p.Emails {
		if strings.EqualFold(e, email) {
			return true
		}
	}
	domain := email[strings.IndexByte(email, '@')+1:]
	for _, d := range p.EmailDomains {
		if strings.EqualFold(strings.TrimPrefix(d, "@"), domain) {
			return true
		}
	}
	return false
}

// canonicalEmail lower-cases an address and accepts only one '@' with a non-empty local part
// and domain, so "attacker@evil.com@company.com" never matches the domain company.com.
func canonicalEmail(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f || c == ',' || c == '"' || c == '\\' {
			return "", false
		}
	}
	return s, true
}
