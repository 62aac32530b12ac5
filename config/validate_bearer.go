package config

import (
	"fmt"
	"strings"
)

// validateBearer checks bearer.*: audiences are plain tokens, trusted issuers are https URLs
// (http only on loopback) other than oidc.issuer, nothing listed twice.
func (c *Config) validateBearer(p *problems) {
	b := c.Bearer
	for i, a := range b.Audiences {
		key := fmt.Sprintf("bearer.audiences[%d]", i)
		switch {
		case a == "" || strings.ContainsAny(a, " \t\r\n\"\\"):
			p.add(key, "must be a non-empty audience without spaces or quotes")
		case indexOf(b.Audiences, a) < i:
			p.add(key, "duplicates bearer.audiences[%d]", indexOf(b.Audiences, a))
		}
	}
	for i, iss := range b.TrustedIssuers {
		key := fmt.Sprintf("bearer.trusted_issuers[%d]", i)
		u, msg := httpURL(iss)
		switch {
		case msg != "":
			p.add(key, "%s", msg)
		case strings.ContainsAny(iss, "?#"):
			p.add(key, "must not have a query or fragment")
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			p.add(key, "must use https:// (http:// only on a loopback host)")
		case iss == c.OIDC.Issuer:
			p.add(key, "is oidc.issuer, which is always trusted: remove it")
		case indexOf(b.TrustedIssuers, iss) < i:
			p.add(key, "duplicates bearer.trusted_issuers[%d]", indexOf(b.TrustedIssuers, iss))
		}
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
