package config

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPublicOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "https://app.example.com", want: "https://app.example.com"},
		{in: "https://App.Example.com/", want: "https://app.example.com"},
		{in: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		if got := (Server{PublicURL: tt.in}).PublicOrigin(); got != tt.want {
			t.Errorf("PublicOrigin(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	got := Server{TrustedProxies: []string{"10.1.2.3/8", "192.168.1.1", "::1", "bogus"}}.TrustedPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("::1/128")}
	if !slices.Equal(got, want) {
		t.Fatalf("TrustedPrefixes = %v, want %v", got, want)
	}
}

func TestLevelsAndModes(t *testing.T) {
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo}
	for in, want := range levels {
		if got := (Server{LogLevel: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
	sameSite := map[string]http.SameSite{"lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode}
	for in, want := range sameSite {
		if got := (Session{SameSite: in}).SameSiteMode(); got != want {
			t.Errorf("SameSiteMode(%q) = %v, want %v", in, got, want)
		}
	}
	redisModes := map[string]string{
		"redis://127.0.0.1:6379/0":                     RedisSingle,
		"unix:///run/redis.sock":                       RedisSingle,
		"redis://s1:26379?master_name=m&addr=s2:26379": RedisSentinel,
		"rediss://n1:7000?addr=n2:7000":                RedisCluster,
	}
	for in, want := range redisModes {
		if got := (Session{RedisURL: in}).RedisMode(); got != want {
			t.Errorf("RedisMode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretKeys(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	for _, enc := range []string{testSecretA, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", " " + testSecretA + "\n"} {
		c := &Config{Session: Session{Secrets: []string{enc, "_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-"}}}
		keys, err := c.SecretKeys()
		if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], raw) || len(keys[1]) != 34 {
			t.Fatalf("SecretKeys(%q) = %v, %v", enc, keys, err)
		}
	}
	for _, bad := range [][]string{nil, {"c2hvcnQ="}, {"!!not base64!!"}} {
		if _, err := (&Config{Session: Session{Secrets: bad}}).SecretKeys(); err == nil {
			t.Errorf("SecretKeys(%q) succeeded", bad)
		}
	}
}

func TestAccessYAMLRoundTrip(t *testing.T) {
	for _, in := range []string{"public\n", "authenticated\n", "roles:\n    - admin\nemail_domains:\n    - example.com\n"} {
		var a Access
		if err := yaml.Unmarshal([]byte(in), &a); err != nil {
			t.Fatalf("Unmarshal(%q): %v", in, err)
		}
		out, err := yaml.Marshal(a)
		if err != nil || string(out) != in {
			t.Errorf("round trip of %q gave %q, %v", in, out, err)
		}
	}
	var a Access
	if err := yaml.Unmarshal([]byte("admins"), &a); err == nil {
		t.Error("Unmarshal accepted an unknown access scalar")
	}
}

func TestProblemsOfPlainError(t *testing.T) {
	if got := Problems(nil); got != nil {
		t.Errorf("Problems(nil) = %v", got)
	}
	c := &Config{}
	ps := Problems(c.Validate())
	if len(ps) < 5 || ps[0].Key == "" {
		t.Fatalf("Problems = %v", ps)
	}
	fe := &FieldError{Key: "a.b", Msg: "bad"}
	if fe.Error() != "a.b: bad" || (&FieldError{Msg: "whole file"}).Error() != "whole file" {
		t.Errorf("FieldError.Error() = %q", fe.Error())
	}
}
