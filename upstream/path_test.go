package upstream

import (
	"bufio"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// escapedPathOf parses a raw request-target the way net/http's server does and returns
// r.URL.EscapedPath(), the exact input the gateway hands to NormalizePath.
func escapedPathOf(t testing.TB, target string) string {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(
		"GET " + target + " HTTP/1.1\r\nHost: gw.example.com\r\n\r\n")))
	if err != nil {
		t.Fatalf("ReadRequest(%q): %v", target, err)
	}
	return req.URL.EscapedPath()
}

// pathCases holds every PATH-* row input of the security checklist (as raw request-targets)
// plus edge cases. want "" means ErrBadPath.
var pathCases = []struct {
	name   string
	target string
	want   string
}{
	{name: "PATH-01 encoded slash after dotdot", target: "/public/..%2fadmin/users"},
	{name: "PATH-02 %2e%2e", target: "/public/%2e%2e/admin/users", want: "/admin/users"},
	{name: "PATH-02 .%2e", target: "/public/.%2e/admin/users", want: "/admin/users"},
	{name: "PATH-02 %2e.", target: "/public/%2e./admin/users", want: "/admin/users"},
	{name: "PATH-02 %2E%2E upper", target: "/public/%2E%2E/admin/users", want: "/admin/users"},
	{name: "PATH-02 dotdot above root", target: "/.%2e/.%2e/admin/users"},
	{name: "PATH-03 raw dotdot", target: "/public/../admin/users", want: "/admin/users"},
	{name: "PATH-04 leading double slash", target: "//admin/users", want: "/admin/users"},
	{name: "PATH-04 inner double slash", target: "/admin//users", want: "/admin/users"},
	{name: "PATH-04 triple slash and encoded slash", target: "///admin/../admin//%2Fusers"},
	{name: "PATH-04 double slash and dotdot", target: "//admin/../admin/users", want: "/admin/users"},
	{name: "PATH-05 %2F", target: "/admin%2Fusers"},
	{name: "PATH-05 %2f", target: "/admin%2fusers"},
	{name: "PATH-05 %2F dotdot", target: "/public%2F..%2Fadmin"},
	{name: "PATH-06 ..;", target: "/public/..;/admin/users"},
	{name: "PATH-06 matrix param", target: "/admin;x=1/users"},
	{name: "PATH-06 bare semicolon", target: "/public;/../admin/users"},
	{name: "PATH-06 encoded semicolon", target: "/admin%3bx=1/users"},
	{name: "PATH-07 double-encoded dots stay literal", target: "/public/%252e%252e/admin/users", want: "/public/%2e%2e/admin/users"},
	{name: "PATH-07 double-encoded slash stays literal", target: "/public/%252f../admin", want: "/public/%2f../admin"},
	{name: "PATH-08 raw backslashes", target: `/public\..\admin\users`},
	{name: "PATH-08 encoded backslashes", target: "/public%5C..%5Cadmin%5Cusers"},
	{name: "PATH-08 lower-case %5c", target: "/public%5c..%5cadmin"},
	{name: "PATH-09 upper case kept", target: "/ADMIN/users", want: "/ADMIN/users"},
	{name: "PATH-09 mixed case kept", target: "/Admin/users", want: "/Admin/users"},
	{name: "PATH-10 /admin", target: "/admin", want: "/admin"},
	{name: "PATH-10 /admin/", target: "/admin/", want: "/admin/"},
	{name: "PATH-10 /admin/.", target: "/admin/.", want: "/admin/"},
	{name: "PATH-10 /admin.", target: "/admin.", want: "/admin."},
	{name: "PATH-10 /admin%20", target: "/admin%20", want: "/admin "},
	{name: "PATH-10 /admin%09", target: "/admin%09"},
	{name: "PATH-10 /admin.json", target: "/admin.json", want: "/admin.json"},
	{name: "PATH-10 /admin/users/", target: "/admin/users/", want: "/admin/users/"},
	{name: "PATH-11 /publicX", target: "/publicX/secret", want: "/publicX/secret"},
	{name: "PATH-11 /public-admin", target: "/public-admin/x", want: "/public-admin/x"},
	{name: "PATH-11 encoded slashes", target: "/public..%2f..%2fadmin"},
	{name: "PATH-12 NUL then dotdot", target: "/public/x%00/../../admin/users"},
	{name: "PATH-12 NUL extension", target: "/admin%00.png"},
	{name: "PATH-13 overlong UTF-8 dots", target: "/%C0%AE%C0%AE/admin/users"},
	{name: "PATH-13 fullwidth solidus kept literal", target: "/%EF%BC%8Fadmin/users", want: "/\uff0fadmin/users"},
	{name: "PATH-13 raw fullwidth percent kept literal", target: "/\uff0561dmin", want: "/\uff0561dmin"},
	{name: "PATH-14 encoded hash", target: "/public/secret%23/endpoint"},
	{name: "PATH-14 raw hash", target: "/public/x#/../admin/users"},
	{name: "PATH-15 query is not path", target: "/api/private/sensitive?path=/status", want: "/api/private/sensitive"},
	{name: "PATH-16 query with semicolons", target: "/api/items?role=user;role=admin&x=1", want: "/api/items"},
	{name: "PATH-17 absolute-form", target: "http://gw.example.com/admin/users", want: "/admin/users"},
	{name: "PATH-17 absolute-form other host", target: "http://other.example/admin", want: "/admin"},
	{name: "PATH-24 64 KiB target", target: "/" + strings.Repeat("a", 64<<10)},
	{name: "root", target: "/", want: "/"},
	{name: "dotdot at root", target: "/.."},
	{name: "encoded dotdot at root", target: "/%2e%2e/"},
	{name: "dotdot then trailing", target: "/a/b/..", want: "/a/"},
	{name: "dot then trailing slash", target: "/a/./", want: "/a/"},
	{name: "dotdot to root", target: "/a/..", want: "/"},
	{name: "three dots literal", target: "/a/.../b", want: "/a/.../b"},
	{name: "dot inside name", target: "/a/.b/c.", want: "/a/.b/c."},
	{name: "encoded DEL", target: "/a%7f"},
	{name: "encoded C1 NEL", target: "/a%c2%85"},
	{name: "encoded CR LF", target: "/a%0d%0aX-Auth-User-Id:%20x"},
	{name: "encoded percent kept", target: "/a%25", want: "/a%"},
	{name: "UTF-8 euro", target: "/%E2%82%AC", want: "/\u20ac"},
	{name: "lone continuation byte", target: "/%80"},
	{name: "encoded question mark", target: "/a%3Fb", want: "/a?b"},
	{name: "at sign", target: "/api/@evil.com/x", want: "/api/@evil.com/x"},
	{name: "scheme-like segment", target: "/api/http://evil.com/x", want: "/api/http:/evil.com/x"},
}

func TestNormalizePath(t *testing.T) {
	for _, tt := range pathCases {
		t.Run(tt.name, func(t *testing.T) {
			escaped := escapedPathOf(t, tt.target)
			got, err := NormalizePath(escaped)
			if tt.want == "" {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want ErrBadPath", escaped, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", escaped, got, err, tt.want)
			}
		})
	}
}

func TestNormalizePathDirectInputs(t *testing.T) {
	tests := []struct {
		name    string
		escaped string
		want    string
	}{
		{name: "empty", escaped: ""},
		{name: "relative", escaped: "admin/users"},
		{name: "raw NUL", escaped: "/a\x00b"},
		{name: "raw tab", escaped: "/a\tb"},
		{name: "raw backslash", escaped: `/a\b`},
		{name: "raw hash", escaped: "/a#b"},
		{name: "raw invalid UTF-8", escaped: "/a\xffb"},
		{name: "exactly 8 KiB", escaped: "/" + strings.Repeat("a", 8<<10-1), want: "/" + strings.Repeat("a", 8<<10-1)},
		{name: "8 KiB plus one", escaped: "/" + strings.Repeat("a", 8<<10)},
		{name: "canonical fast path", escaped: "/api/v1/items/", want: "/api/v1/items/"},
		{name: "raw space", escaped: "/a b", want: "/a b"},
		// net/http already answers 400 to these; NormalizePath must reject them on its own too.
		{name: "truncated escape", escaped: "/a%2"},
		{name: "bad escape", escaped: "/a%zz"},
		{name: "IIS %u escape", escaped: "/a%u002e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.escaped)
			if tt.want == "" {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want ErrBadPath", tt.escaped, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.escaped, got, err, tt.want)
			}
		})
	}
}

func TestNormalizePathCanonicalDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := NormalizePath("/api/v1/items/42"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs = %v, want 0 for an already canonical path", allocs)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, tt := range pathCases {
		if !strings.Contains(tt.target, "://") && len(tt.target) < 1024 {
			f.Add(strings.SplitN(tt.target, "?", 2)[0])
		}
	}
	f.Add("/a/%2e%2e/%2E/b//c/")
	f.Fuzz(func(t *testing.T, escaped string) {
		out, err := NormalizePath(escaped)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not wrap ErrBadPath", err)
			}
			return
		}
		checkCanonical(t, escaped, out)
		again := (&url.URL{Path: out}).EscapedPath()
		if len(again) > maxPathLen {
			return // re-escaping grew it past the length limit; rejecting that is correct
		}
		out2, err := NormalizePath(again)
		if err != nil || out2 != out {
			t.Fatalf("not idempotent: %q -> %q -> %q -> %q, %v", escaped, out, again, out2, err)
		}
	})
}

func checkCanonical(t *testing.T, in, out string) {
	t.Helper()
	switch {
	case !strings.HasPrefix(out, "/"):
		t.Fatalf("NormalizePath(%q) = %q: no leading /", in, out)
	case strings.Contains(out, "//"), strings.Contains(out, "/./"), strings.Contains(out, "/../"),
		strings.HasSuffix(out, "/."), strings.HasSuffix(out, "/.."):
		t.Fatalf("NormalizePath(%q) = %q: not resolved", in, out)
	case strings.ContainsAny(out, "\\\x00#;"):
		t.Fatalf("NormalizePath(%q) = %q: forbidden character", in, out)
	case !utf8.ValidString(out):
		t.Fatalf("NormalizePath(%q) = %q: invalid UTF-8", in, out)
	}
	for i := 0; i < len(out); i++ {
		if out[i] < 0x20 || out[i] == 0x7f {
			t.Fatalf("NormalizePath(%q) = %q: control byte", in, out)
		}
	}
}
