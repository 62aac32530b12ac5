package gateway

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain path", in: "/dashboard", want: "/dashboard"},
		{name: "path and query", in: "/a/b?x=1&y=%2F", want: "/a/b?x=1&y=%2F"},
		{name: "root", in: "/", want: "/"},
		{name: "encoded space in path", in: "/a%20b", want: "/a%20b"},
		{name: "empty", in: "", want: "/"},
		{name: "OR-01 scheme-relative", in: "//evil.com", want: "/"},
		{name: "OR-02 triple slash", in: "///evil.com", want: "/"},
		{name: "OR-02 quadruple slash", in: "////evil.com", want: "/"},
		{name: "OR-02 with encoded dots", in: "//evil.com/%2F..", want: "/"},
		{name: "OR-03 slash backslash", in: `/\evil.com`, want: "/"},
		{name: "OR-04 backslash slash", in: `\/evil.com`, want: "/"},
		{name: "OR-04 double backslash", in: `\\evil.com`, want: "/"},
		{name: "OR-04 slash backslash slash", in: `/\/evil.com`, want: "/"},
		{name: "OR-05 tab", in: "/\t/evil.com", want: "/"},
		{name: "OR-05 LF", in: "/\n/evil.com", want: "/"},
		{name: "OR-05 CR", in: "/\r/evil.com", want: "/"},
		{name: "OR-05 VT", in: "/\v/evil.com", want: "/"},
		{name: "OR-05 FF", in: "/\f/evil.com", want: "/"},
		{name: "OR-05 space", in: "/ /evil.com", want: "/"},
		{name: "OR-05 encoded tab", in: "/%09/evil.com", want: "/"},
		{name: "OR-06 tab backslash", in: "/\t\\evil.com", want: "/"},
		{name: "OR-06 tabs and backslash", in: "/\t\t\\\t\t/evil.com", want: "/"},
		{name: "OR-07 encoded double slash", in: "/%2F%2Fevil.com", want: "/"},
		{name: "OR-07 encoded backslash", in: "/%5Cevil.com", want: "/"},
		{name: "OR-07 double-encoded", in: "/%252F%252Fevil.com", want: "/%252F%252Fevil.com"},
		{name: "OR-08 dot backslash", in: `/./\evil.com`, want: "/"},
		{name: "OR-08 dot dot backslash", in: `/./../../\evil.com`, want: "/"},
		{name: "OR-08 a dotdot backslash", in: `/a/../\evil.com`, want: "/"},
		{name: "dot segment slash", in: "/.//evil.com", want: "/"},
		{name: "encoded dot segments", in: "/a/%2e%2e/b", want: "/"},
		{name: "OR-09 https opaque", in: "https:evil.com", want: "/"},
		{name: "OR-09 http opaque", in: "http:evil.com", want: "/"},
		{name: "OR-09 https single slash", in: "https:/evil.com", want: "/"},
		{name: "OR-09 https backslashes", in: `https:\\evil.com`, want: "/"},
		{name: "OR-10 absolute", in: "https://evil.com/", want: "/"},
		{name: "OR-10 absolute http", in: "http://evil.com/", want: "/"},
		{name: "OR-13 userinfo", in: "https://app.example.net@evil.com/", want: "/"},
		{name: "OR-13 port userinfo", in: "https://app.example.net:443@evil.com/", want: "/"},
		{name: "OR-14 backslash host", in: `https://evil.com\.app.example.net/`, want: "/"},
		{name: "OR-15 unicode", in: "/\u2100evil", want: "/"},
		{name: "OR-15 fullwidth slash", in: "/\uff0fevil.com", want: "/"},
		{name: "OR-17 javascript", in: "javascript:alert(document.domain)", want: "/"},
		{name: "OR-17 mixed case javascript", in: "JaVaScRiPt:alert(1)", want: "/"},
		{name: "OR-17 data", in: "data:text/html,<script>alert(1)</script>", want: "/"},
		{name: "OR-17 vbscript", in: "vbscript:msgbox(1)", want: "/"},
		{name: "OR-18 leading space", in: " //evil.com", want: "/"},
		{name: "OR-18 NUL", in: "\x00//evil.com", want: "/"},
		{name: "OR-18 zero-width space", in: "\u200b//evil.com", want: "/"},
		{name: "OR-21 response splitting", in: "/x\r\nSet-Cookie: a=b", want: "/"},
		{name: "OR-21 encoded splitting", in: "/x%0D%0ASet-Cookie:%20a=b", want: "/"},
		{name: "OR-22 chain to login", in: "/.auth/login?return_to=https://evil.com", want: "/"},
		{name: "OR-25 callback", in: "/.auth/callback?code=X&state=Y", want: "/"},
		{name: "OR-25 logout upper case", in: "/.AUTH/logout", want: "/"},
		{name: "OR-25 auth root", in: "/.auth", want: "/"},
		{name: "OR-26 very long", in: "/" + strings.Repeat("a", 10000), want: "/"},
		{name: "OR-28 ftp", in: "ftp://app.example.net/", want: "/"},
		{name: "OR-28 file", in: "file:///etc/passwd", want: "/"},
		{name: "relative path", in: "dashboard", want: "/"},
		{name: "encoded NUL", in: "/a%00b", want: "/"},
		{name: "bad escape", in: "/a%zz", want: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SafeReturnTo(tt.in); got != tt.want {
				t.Errorf("SafeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzSafeReturnTo checks the invariant that matters: whatever comes in, what goes out
// resolves, in a browser's eyes, to a path on the gateway's own origin.
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil.com", `/\evil.com`, "/%2F%2Fx", "/\t/x", "https:x", "/a/../b", "/.auth/login"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://gw.example.com/start/page")
	f.Fuzz(func(t *testing.T, in string) {
		out := SafeReturnTo(in)
		if out != "/" && out != in {
			t.Fatalf("SafeReturnTo(%q) = %q: must be the input or /", in, out)
		}
		if strings.ContainsAny(out, "\\\t\r\n\x00 ") || strings.HasPrefix(out, "//") {
			t.Fatalf("SafeReturnTo(%q) = %q: unsafe characters", in, out)
		}
		ref, err := url.Parse(out)
		if err != nil {
			t.Fatalf("SafeReturnTo(%q) = %q does not parse: %v", in, out, err)
		}
		if got := base.ResolveReference(ref); got.Host != base.Host || got.Scheme != base.Scheme {
			t.Fatalf("SafeReturnTo(%q) = %q leaves the origin: %v", in, out, got)
		}
	})
}
