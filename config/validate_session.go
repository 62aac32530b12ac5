package config

import (
	"fmt"
	"strings"
)

func (c *Config) validateSession(p *problems) {
	s := c.Session
	switch s.Store {
	case StoreRedis:
		if msg := checkRedisURL(s); msg != "" {
			p.add("session.redis_url", "%s", msg)
		}
	case StoreMemory:
	default:
		p.add("session.store", "must be redis or memory")
	}
	c.validateCookie(p)
	switch s.SameSite {
	case SameSiteLax, SameSiteStrict:
	case SameSiteNone:
		if !s.Secure {
			p.add("session.same_site", `"none" requires session.secure: true`)
		}
	default:
		p.add("session.same_site", "must be lax, strict or none")
	}
	if u, ok := c.publicURL(); ok && !s.Secure && !isLoopbackHTTP(u) {
		p.add("session.secure", "false is only allowed when server.public_url is http:// on a loopback host")
	}
	validateSecrets(s.Secrets, p)
	switch {
	case s.IdleTimeout <= 0:
		p.add("session.idle_timeout", "must be greater than 0")
	case s.AbsoluteTimeout < s.IdleTimeout:
		p.add("session.absolute_timeout", "must be at least session.idle_timeout (%s)", s.IdleTimeout)
	}
}

func (c *Config) validateCookie(p *problems) {
	s := c.Session
	if !isToken(s.CookieName) {
		p.add("session.cookie_name", "must be a cookie name (letters, digits and !#$%%&'*+-.^_`|~)")
	}
	lower := strings.ToLower(s.CookieName)
	switch {
	case strings.HasPrefix(lower, "__host-"):
		if !s.Secure {
			p.add("session.cookie_name", `the "__Host-" prefix requires session.secure: true`)
		}
		if s.CookieDomain != "" {
			p.add("session.cookie_domain", `must be empty with a "__Host-" session.cookie_name (browsers refuse a __Host- cookie with a Domain)`)
			return
		}
	case strings.HasPrefix(lower, "__secure-"):
		if !s.Secure {
			p.add("session.cookie_name", `the "__Secure-" prefix requires session.secure: true`)
		}
	}
	if s.CookieDomain == "" {
		return
	}
	dom := strings.TrimPrefix(s.CookieDomain, ".")
	if !isHostname(dom) {
		p.add("session.cookie_domain", "must be a lower-case domain name such as example.com")
		return
	}
	if u, ok := c.publicURL(); ok {
		host := strings.ToLower(u.Hostname())
		if host != dom && !strings.HasSuffix(host, "."+dom) {
			p.add("session.cookie_domain", "%q does not cover the host of server.public_url (%q): browsers would refuse the cookie", s.CookieDomain, host)
		}
	}
}

func validateSecrets(secrets []string, p *problems) {
	if len(secrets) == 0 {
		p.add("session.secrets", "at least one secret is required (32+ random bytes, base64: openssl rand -base64 32)")
		return
	}
	seen := map[string]int{}
	for i, s := range secrets {
		key := fmt.Sprintf("session.secrets[%d]", i)
		b, err := decodeSecret(s)
		if err != nil {
			p.add(key, "is not valid base64 (standard or URL alphabet, padded or not)")
			continue
		}
		if len(b) < minSecretBytes {
			p.add(key, "decodes to %d bytes; at least %d are required", len(b), minSecretBytes)
			continue
		}
		if j, dup := seen[string(b)]; dup {
			p.add(key, "duplicates session.secrets[%d]", j)
		}
		seen[string(b)] = i
	}
}
