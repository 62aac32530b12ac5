package upstream

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func matchRoutes(t testing.TB) []Route {
	target := mustURL(t, "http://127.0.0.1:9001")
	return []Route{
		{Name: "host-special", Host: "app.example.com", PathPrefix: "/special/", Target: target},
		{Name: "api-admin", PathPrefix: "/api/admin/", Target: target},
		{Name: "api", PathPrefix: "/api/", Target: target},
		{Name: "admin", PathPrefix: "/admin", Target: target},
		{Name: "public", PathPrefix: "/public/", Target: target},
		{Name: "dotted-host", Host: "Other.Example.", PathPrefix: "/", Target: target},
	}
}

func TestTableMatch(t *testing.T) {
	table, err := NewTable(matchRoutes(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		host string
		path string
		want string // route name, "" for no match
	}{
		{name: "prefix with slash matches itself without slash", host: "gw", path: "/public", want: "public"},
		{name: "prefix with slash matches itself", host: "gw", path: "/public/", want: "public"},
		{name: "prefix with slash matches below", host: "gw", path: "/public/x/y", want: "public"},
		{name: "PATH-11 no segment boundary", host: "gw", path: "/publicX/secret"},
		{name: "PATH-11 dash suffix", host: "gw", path: "/public-admin/x"},
		{name: "prefix without slash matches itself", host: "gw", path: "/admin", want: "admin"},
		{name: "prefix without slash matches below", host: "gw", path: "/admin/users", want: "admin"},
		{name: "prefix without slash not adminX", host: "gw", path: "/adminX"},
		{name: "PATH-10 /admin.", host: "gw", path: "/admin."},
		{name: "PATH-10 /admin.json", host: "gw", path: "/admin.json"},
		{name: "PATH-09 upper case", host: "gw", path: "/ADMIN/users", want: "admin"},
		{name: "PATH-09 mixed case", host: "gw", path: "/Admin/users", want: "admin"},
		{name: "Kelvin sign does not fold", host: "gw", path: "/\u212Aapi/x"},
		{name: "PATH-22 first match wins", host: "gw", path: "/api/admin/x", want: "api-admin"},
		{name: "PATH-22 case-folded first match", host: "gw", path: "/API/Admin/x", want: "api-admin"},
		{name: "general api", host: "gw", path: "/api/items", want: "api"},
		{name: "host route exact", host: "app.example.com", path: "/special/x", want: "host-special"},
		{name: "PATH-23 host upper case", host: "APP.EXAMPLE.COM", path: "/special/x", want: "host-special"},
		{name: "PATH-23 host trailing dot", host: "app.example.com.", path: "/special/x", want: "host-special"},
		{name: "PATH-23 host with port", host: "app.example.com:443", path: "/special/x", want: "host-special"},
		{name: "PATH-23 host dot and port", host: "App.Example.Com.:8443", path: "/special", want: "host-special"},
		{name: "host route other host", host: "evil.example", path: "/special/x"},
		{name: "host suffix is not host", host: "xapp.example.com", path: "/special/x"},
		{name: "configured host with dot and case", host: "other.example:80", path: "/anything", want: "dotted-host"},
		{name: "IPv6 host with port", host: "[::1]:8080", path: "/nothing"},
		{name: "unmatched", host: "gw", path: "/not/configured"},
		{name: "empty path", host: "gw", path: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := table.Match(tt.host, tt.path)
			got := ""
			if i >= 0 {
				got = table.Route(i).Name
			}
			if got != tt.want {
				t.Fatalf("Match(%q, %q) = %d (%q), want %q", tt.host, tt.path, i, got, tt.want)
			}
		})
	}
	if table.Len() != 6 {
		t.Fatalf("Len = %d, want 6", table.Len())
	}
}

func TestTableRootPrefix(t *testing.T) {
	table, err := NewTable([]Route{{Name: "root", PathPrefix: "/", Target: mustURL(t, "http://u")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/x", "/x/y/"} {
		if got := table.Match("any", p); got != 0 {
			t.Errorf("Match(%q) = %d, want 0", p, got)
		}
	}
	if got := table.Match("any", "relative"); got != -1 {
		t.Errorf("Match(relative) = %d, want -1", got)
	}
}

func TestNewTableRejects(t *testing.T) {
	good := mustURL(t, "http://127.0.0.1:9001/base")
	tests := []struct {
		name  string
		route Route
	}{
		{name: "empty prefix", route: Route{PathPrefix: "", Target: good}},
		{name: "relative prefix", route: Route{PathPrefix: "admin/", Target: good}},
		{name: "dotdot prefix", route: Route{PathPrefix: "/a/../admin/", Target: good}},
		{name: "double slash prefix", route: Route{PathPrefix: "/a//b", Target: good}},
		{name: "semicolon prefix", route: Route{PathPrefix: "/a;b/", Target: good}},
		{name: "host with port", route: Route{Host: "a.example:443", PathPrefix: "/", Target: good}},
		{name: "host with space", route: Route{Host: "a example", PathPrefix: "/", Target: good}},
		{name: "nil target", route: Route{PathPrefix: "/"}},
		{name: "ftp target", route: Route{PathPrefix: "/", Target: mustURL(t, "ftp://h/")}},
		{name: "target without host", route: Route{PathPrefix: "/", Target: mustURL(t, "http:///x")}},
		{name: "target with query", route: Route{PathPrefix: "/", Target: mustURL(t, "http://h/?a=1")}},
		{name: "target with user info", route: Route{PathPrefix: "/", Target: mustURL(t, "http://u:p@h/")}},
		{name: "negative timeout", route: Route{PathPrefix: "/", Target: good, Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.route.Name = "r"
			if _, err := NewTable([]Route{tt.route}); err == nil {
				t.Fatalf("NewTable(%+v) succeeded, want error", tt.route)
			}
		})
	}
}

func TestNewTableReportsEveryBadRoute(t *testing.T) {
	_, err := NewTable([]Route{
		{Name: "one", PathPrefix: "x"},
		{Name: "two", PathPrefix: "/", Target: mustURL(t, "http://h")},
		{Name: "three", PathPrefix: "/"},
	})
	if err == nil || !strings.Contains(err.Error(), `"one"`) || !strings.Contains(err.Error(), `"three"`) ||
		strings.Contains(err.Error(), `"two"`) {
		t.Fatalf("err = %v, want both bad routes named and only them", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("err = %v, want 2 joined errors", err)
	}
}

// refMatch is a deliberately naive reference implementation of Match.
func refMatch(routes []Route, host, p string) int {
	h := strings.ToLower(host)
	if i := strings.LastIndex(h, ":"); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	lp := asciiLower(p)
	for i, r := range routes {
		if r.Host != "" && h != asciiLower(strings.TrimSuffix(r.Host, ".")) {
			continue
		}
		base := strings.TrimSuffix(asciiLower(r.PathPrefix), "/")
		if lp == base || strings.HasPrefix(lp, base+"/") {
			return i
		}
	}
	return -1
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func FuzzMatch(f *testing.F) {
	routes := matchRoutes(f)
	table, err := NewTable(routes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("gw", "/api/admin/x")
	f.Add("APP.example.com.:1", "/SPECIAL")
	f.Add("other.example", "/")
	f.Add("[::1]:80", "/publicX")
	f.Fuzz(func(t *testing.T, host, p string) {
		got := table.Match(host, p)
		if got < -1 || got >= table.Len() {
			t.Fatalf("Match(%q, %q) = %d out of range", host, p, got)
		}
		if want := refMatch(routes, host, p); got != want {
			t.Fatalf("Match(%q, %q) = %d, reference says %d", host, p, got, want)
		}
		if up := table.Match(host, strings.ToUpper(p)); isASCII(p) && up != got {
			t.Fatalf("Match(%q, upper %q) = %d, want %d (case-insensitive)", host, p, up, got)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
