package config

import (
	"fmt"
	"net"
	"path"
	"reflect"
	"slices"
	"strings"
)

// authPrefix is the reserved prefix of the gateway's own endpoints.
const authPrefix = "/.auth/"

// Methods a route may list.
func routeMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
}

func (c *Config) validateRoutes(p *problems) {
	if c.Upstream != "" {
		if msg := upstreamProblem(c.Upstream); msg != "" {
			p.add("upstream", "%s", msg)
		}
		if len(c.Routes) == 0 || (len(c.Routes) == 1 && reflect.DeepEqual(c.Routes[0], c.sidecarRoute())) {
			return
		}
		p.add("upstream", "cannot be combined with routes: use upstream alone (one app at /) or list the routes")
	}
	if len(c.Routes) == 0 {
		p.add("routes", "at least one route is required (or the top-level upstream for a single app)")
		return
	}
	names := map[string]int{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Name != "" {
			if j, dup := names[r.Name]; dup {
				p.add(key+".name", "duplicates routes[%d].name %q", j, r.Name)
			} else {
				names[r.Name] = i
			}
		}
		validateRoute(r, key, p)
	}
	c.validateShadowing(p)
}

func validateRoute(r Route, key string, p *problems) {
	switch {
	case r.Name == "":
		p.add(key+".name", "required")
	case !isRouteName(r.Name):
		p.add(key+".name", "must use only a-z, 0-9, _ and -")
	}
	validatePathPrefix(r.PathPrefix, key+".path_prefix", p)
	if r.Host != "" && !isRouteHost(r.Host) {
		p.add(key+".host", "must be a lower-case host or host:port, without scheme or path")
	}
	if msg := upstreamProblem(r.Upstream); msg != "" {
		p.add(key+".upstream", "%s", msg)
	}
	validateAccess(r.Access, key+".access", p)
	if r.Access.Public && r.PassAccessToken {
		p.add(key+".pass_access_token", "a public route has no session: remove it or make the route authenticated")
	}
	if r.Access.Public && r.IdentityJWT {
		p.add(key+".identity_jwt", "a public route has no session: remove it or make the route authenticated")
	}
	if r.Timeout <= 0 {
		p.add(key+".timeout", "must be greater than 0")
	}
	for j, m := range r.Methods {
		mk := fmt.Sprintf("%s.methods[%d]", key, j)
		switch {
		case slices.Contains(routeMethods(), m):
			if slices.Index(r.Methods, m) < j {
				p.add(mk, "%s is listed twice", m)
			}
		case slices.Contains(routeMethods(), strings.ToUpper(m)):
			p.add(mk, "must be upper case (%s)", strings.ToUpper(m))
		default:
			p.add(mk, "must be one of %s", strings.Join(routeMethods(), ", "))
		}
	}
	if r.CSRF != CSRFOrigin && r.CSRF != CSRFHeader {
		p.add(key+".csrf", "must be origin or header")
	}
}

// upstreamProblem describes what is wrong with an upstream URL, or returns "".
func upstreamProblem(u string) string {
	if u == "" {
		return "required: the http(s) URL requests are forwarded to"
	}
	if _, msg := httpURL(u); msg != "" {
		return msg
	}
	if strings.ContainsAny(u, "?#") {
		return "must not have a query or fragment"
	}
	return ""
}

func validatePathPrefix(prefix, key string, p *problems) {
	if msg := prefixProblem(prefix); msg != "" {
		p.add(key, "%s", msg)
	}
}

// prefixProblem describes what is wrong with a path_prefix, or returns "".
func prefixProblem(prefix string) string {
	switch {
	case prefix == "":
		return `required, e.g. "/" or "/admin/"`
	case !isLocalPath(prefix) || strings.ContainsAny(prefix, "?#%;"):
		return `must be a path starting with "/" (no "//", "\", "?", "#", ";", "%" or control characters)`
	case cleanPrefix(prefix) != prefix:
		return fmt.Sprintf("must be a clean path (no \".\" or \"..\" segments, no repeated \"/\"): %q", cleanPrefix(prefix))
	case prefix+"/" == authPrefix || strings.HasPrefix(prefix, authPrefix):
		return fmt.Sprintf("shadows the gateway's login endpoints (%s is reserved)", authPrefix)
	}
	return ""
}

// cleanPrefix is path.Clean keeping a trailing slash.
func cleanPrefix(s string) string {
	c := path.Clean(s)
	if strings.HasSuffix(s, "/") && c != "/" {
		c += "/"
	}
	return c
}

func isRouteName(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return false
		}
	}
	return s != ""
}

func isRouteHost(h string) bool {
	if strings.Contains(h, ":") {
		host, port, err := net.SplitHostPort(h)
		return err == nil && port != "" && isHostname(host) && strings.Trim(port, "0123456789") == ""
	}
	return isHostname(h)
}

func validateAccess(a Access, key string, p *problems) {
	modes := 0
	for _, on := range []bool{a.Public, a.Authenticated, a.HasRules()} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0 && a.mapping:
		p.add(key, "lists no roles, groups, emails or email_domains (use authenticated for any logged-in user)")
		return
	case modes == 0:
		p.add(key, "%s", accessFormMsg)
		return
	case modes > 1:
		p.add(key, "set exactly one of public, authenticated or a mapping of rules")
		return
	}
	checkNames := func(list []string, sub, what string, ok func(string) bool) {
		for i, v := range list {
			if !ok(v) {
				p.add(fmt.Sprintf("%s.%s[%d]", key, sub, i), "must be %s", what)
			}
		}
	}
	checkNames(a.Roles, "roles", "a role name without spaces or commas", isClaimValue)
	checkNames(a.Groups, "groups", "a group name without spaces or commas", isClaimValue)
	checkNames(a.Emails, "emails", "an email address (one @, no spaces)", isEmail)
	checkNames(a.EmailDomains, "email_domains", `a lower-case domain such as "example.com"`, func(s string) bool {
		return isHostname(strings.TrimPrefix(s, "@"))
	})
}

// isClaimValue accepts what can arrive in the comma-separated X-Auth-Roles / X-Auth-Groups.
func isClaimValue(s string) bool {
	return s != "" && !strings.ContainsAny(s, ", \t\r\n")
}

func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n,") &&
		!strings.Contains(domain, "@")
}

// validateShadowing refuses a route that an earlier route always matches first: with "first
// match wins", listing /api/ before /api/admin/ would send admin requests to the /api/ route and
// its (weaker) access rule.
func (c *Config) validateShadowing(p *problems) {
	for j, later := range c.Routes {
		for i, earlier := range c.Routes[:j] {
			if prefixProblem(earlier.PathPrefix) != "" || prefixProblem(later.PathPrefix) != "" {
				continue
			}
			if (earlier.Host == "" || strings.EqualFold(earlier.Host, later.Host)) &&
				prefixCovers(earlier.PathPrefix, later.PathPrefix) {
				p.add(fmt.Sprintf("routes[%d].path_prefix", j),
					"never matched: routes[%d] (%q) comes first and matches all its requests; list longer prefixes first",
					i, earlier.Name)
				break
			}
		}
	}
}

// prefixCovers reports whether every path matched by prefix b (on a segment boundary) is
// also matched by prefix a.
func prefixCovers(a, b string) bool {
	if a == b || a == "/" {
		return true
	}
	if strings.HasSuffix(a, "/") {
		return strings.HasPrefix(b, a)
	}
	return strings.HasPrefix(b, a+"/")
}
