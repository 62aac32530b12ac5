package config

import (
	"testing"
	"time"
)

// route returns a valid authenticated route.
func route(name, prefix string) Route {
	r := DefaultRoute()
	r.Name, r.PathPrefix, r.Upstream = name, prefix, "http://127.0.0.1:9001"
	return r
}

func TestValidateRoutes(t *testing.T) {
	tests := []struct {
		name     string
		routes   func() []Route
		wantKeys []string
		wantMsg  string
	}{
		{name: "one route", routes: func() []Route { return []Route{route("app", "/")} }},
		{name: "no routes", routes: func() []Route { return nil }, wantKeys: []string{"routes"}},
		{name: "name missing", routes: func() []Route { return []Route{route("", "/")} }, wantKeys: []string{"routes[0].name"}},
		{name: "name upper case", routes: func() []Route { return []Route{route("Admin", "/")} }, wantKeys: []string{"routes[0].name"}},
		{name: "name with dot", routes: func() []Route { return []Route{route("a.b", "/")} }, wantKeys: []string{"routes[0].name"}},
		{name: "name duplicate", routes: func() []Route {
			return []Route{route("app", "/a/"), route("app_2", "/b/"), route("app", "/c/")}
		}, wantKeys: []string{"routes[2].name"}},
		{name: "prefix missing", routes: func() []Route { return []Route{route("app", "")} }, wantKeys: []string{"routes[0].path_prefix"}},
		{name: "prefix relative", routes: func() []Route { return []Route{route("app", "admin/")} }, wantKeys: []string{"routes[0].path_prefix"}},
		{name: "prefix double slash", routes: func() []Route { return []Route{route("app", "//admin/")} }, wantKeys: []string{"routes[0].path_prefix"}},
		{name: "prefix dot dot", routes: func() []Route { return []Route{route("app", "/a/../admin/")} }, wantKeys: []string{"routes[0].path_prefix"}},
		{name: "prefix encoded", routes: func() []Route { return []Route{route("app", "/a%2fb/")} }, wantKeys: []string{"routes[0].path_prefix"}},
		{name: "prefix .auth", routes: func() []Route { return []Route{route("x", "/.auth")} }, wantKeys: []string{"routes[0].path_prefix"}, wantMsg: "shadows the gateway's login endpoints"},
		{name: "prefix .auth/", routes: func() []Route { return []Route{route("x", "/.auth/")} }, wantKeys: []string{"routes[0].path_prefix"}, wantMsg: "shadows the gateway's login endpoints"},
		{name: "prefix .auth/login public", routes: func() []Route {
			r := route("x", "/.auth/login")
			r.Access = Access{Public: true}
			return []Route{r}
		}, wantKeys: []string{"routes[0].path_prefix"}, wantMsg: "shadows"},
		{name: "prefix .authz is not reserved", routes: func() []Route { return []Route{route("x", "/.authz/")} }},
		{name: "host ok", routes: func() []Route { r := route("app", "/"); r.Host = "app.example.com:8443"; return []Route{r} }},
		{name: "host upper case", routes: func() []Route { r := route("app", "/"); r.Host = "App.example.com"; return []Route{r} }, wantKeys: []string{"routes[0].host"}},
		{name: "host with scheme", routes: func() []Route { r := route("app", "/"); r.Host = "https://app.example.com"; return []Route{r} }, wantKeys: []string{"routes[0].host"}},
		{name: "upstream missing", routes: func() []Route { r := route("app", "/"); r.Upstream = ""; return []Route{r} }, wantKeys: []string{"routes[0].upstream"}},
		{name: "upstream ftp", routes: func() []Route { r := route("app", "/"); r.Upstream = "ftp://files"; return []Route{r} }, wantKeys: []string{"routes[0].upstream"}},
		{name: "upstream no host", routes: func() []Route { r := route("app", "/"); r.Upstream = "http:///x"; return []Route{r} }, wantKeys: []string{"routes[0].upstream"}},
		{name: "upstream with path", routes: func() []Route { r := route("app", "/"); r.Upstream = "https://svc.internal/base/"; return []Route{r} }},
		{name: "upstream with query", routes: func() []Route { r := route("app", "/"); r.Upstream = "http://svc/?a=1"; return []Route{r} }, wantKeys: []string{"routes[0].upstream"}},
		{name: "access zero", routes: func() []Route { r := route("app", "/"); r.Access = Access{}; return []Route{r} }, wantKeys: []string{"routes[0].access"}},
		{name: "access empty mapping", routes: func() []Route { r := route("app", "/"); r.Access = Access{mapping: true}; return []Route{r} }, wantKeys: []string{"routes[0].access"}},
		{name: "access two modes", routes: func() []Route {
			r := route("app", "/")
			r.Access = Access{Public: true, Roles: []string{"admin"}}
			return []Route{r}
		}, wantKeys: []string{"routes[0].access"}},
		{name: "access rules ok", routes: func() []Route {
			r := route("app", "/")
			r.Access = Access{Roles: []string{"admin"}, Groups: []string{"ops"}, Emails: []string{"bob@example.com"}, EmailDomains: []string{"example.com", "@example.org"}}
			return []Route{r}
		}},
		{name: "access bad entries", routes: func() []Route {
			r := route("app", "/")
			r.Access = Access{Roles: []string{"viewer,admin"}, Groups: []string{""}, Emails: []string{"bob"}, EmailDomains: []string{"Example.COM"}}
			return []Route{r}
		}, wantKeys: []string{"routes[0].access.roles[0]", "routes[0].access.groups[0]", "routes[0].access.emails[0]", "routes[0].access.email_domains[0]"}},
		{name: "public with access token", routes: func() []Route {
			r := route("app", "/")
			r.Access, r.PassAccessToken = Access{Public: true}, true
			return []Route{r}
		}, wantKeys: []string{"routes[0].pass_access_token"}},
		{name: "public with identity jwt", routes: func() []Route {
			r := route("app", "/")
			r.Access, r.IdentityJWT = Access{Public: true}, true
			return []Route{r}
		}, wantKeys: []string{"routes[0].identity_jwt"}},
		{name: "timeout zero", routes: func() []Route { r := route("app", "/"); r.Timeout = 0; return []Route{r} }, wantKeys: []string{"routes[0].timeout"}},
		{name: "timeout negative", routes: func() []Route { r := route("app", "/"); r.Timeout = -time.Second; return []Route{r} }, wantKeys: []string{"routes[0].timeout"}},
		{name: "methods ok", routes: func() []Route {
			r := route("app", "/")
			r.Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
			return []Route{r}
		}},
		{name: "methods bad", routes: func() []Route {
			r := route("app", "/")
			r.Methods = []string{"GET", "get", "FETCH", "GET"}
			return []Route{r}
		}, wantKeys: []string{"routes[0].methods[1]", "routes[0].methods[2]", "routes[0].methods[3]"}},
		{name: "csrf header", routes: func() []Route { r := route("app", "/"); r.CSRF = CSRFHeader; return []Route{r} }},
		{name: "csrf none", routes: func() []Route { r := route("app", "/"); r.CSRF = "none"; return []Route{r} }, wantKeys: []string{"routes[0].csrf"}},
		{name: "longer prefix first", routes: func() []Route { return []Route{route("admin", "/api/admin/"), route("api", "/api/")} }},
		{name: "shorter prefix first shadows", routes: func() []Route {
			return []Route{route("api", "/api/"), route("admin", "/api/admin/")}
		}, wantKeys: []string{"routes[1].path_prefix"}, wantMsg: "never matched"},
		{name: "slashless prefix shadows on boundary", routes: func() []Route {
			return []Route{route("api", "/api"), route("admin", "/api/admin")}
		}, wantKeys: []string{"routes[1].path_prefix"}},
		{name: "slashless prefix does not cover sibling", routes: func() []Route {
			return []Route{route("api", "/api"), route("apix", "/apix/")}
		}},
		{name: "root first shadows everything", routes: func() []Route {
			return []Route{route("app", "/"), route("admin", "/admin/"), route("docs", "/docs/")}
		}, wantKeys: []string{"routes[1].path_prefix", "routes[2].path_prefix"}},
		{name: "same prefix twice", routes: func() []Route { return []Route{route("a", "/x/"), route("b", "/x/")} }, wantKeys: []string{"routes[1].path_prefix"}},
		{name: "host routes do not shadow other hosts", routes: func() []Route {
			a, b := route("a", "/"), route("b", "/")
			a.Host, b.Host = "a.example.com", "b.example.com"
			return []Route{a, b}
		}},
		{name: "hostless route shadows host route", routes: func() []Route {
			a, b := route("a", "/"), route("b", "/x/")
			b.Host = "b.example.com"
			return []Route{a, b}
		}, wantKeys: []string{"routes[1].path_prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			c.Routes = tt.routes()
			err := c.Validate()
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
		})
	}
}
