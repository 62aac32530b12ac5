package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestBearerTokenHeader(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		present bool
		want    string // "" means refused
	}{
		{name: "bearer", values: []string{"Bearer abc.def.ghi"}, present: true, want: "abc.def.ghi"},
		{name: "scheme in any case", values: []string{"bEaReR abc"}, present: true, want: "abc"},
		{name: "basic", values: []string{"Basic dXNlcjpwYXNz"}},
		{name: "none", values: nil},
		{name: "empty token", values: []string{"Bearer "}, present: true},
		{name: "two tokens", values: []string{"Bearer a b"}, present: true},
		{name: "two headers", values: []string{"Basic x", "Bearer abc"}, present: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header["Authorization"] = tt.values
			if got := hasBearer(r); got != tt.present {
				t.Fatalf("hasBearer = %v, want %v", got, tt.present)
			}
			if !tt.present {
				return
			}
			tok, be := bearerToken(r)
			if tok != tt.want || (tt.want == "") != (be != nil) {
				t.Fatalf("bearerToken = %q, %v; want %q", tok, be, tt.want)
			}
		})
	}
}

// jwksServer serves a JWKS with one key that does not parse and one RSA key; status decides
// the answer's status. It counts fetches.
func jwksServer(t *testing.T, status *atomic.Int32, fetches *atomic.Int32) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"})
	doc := `{"keys":[{"kty":"XYZ","kid":"odd"},` + string(good) + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestKeySetRefresh(t *testing.T) {
	var status, fetches atomic.Int32
	status.Store(http.StatusOK)
	now := time.Unix(1_800_000_000, 0)
	ks := &keySet{url: jwksServer(t, &status, &fetches), client: &http.Client{Timeout: 5 * time.Second},
		now: func() time.Time { return now }, minRefresh: 10 * time.Second, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	step := func(name, kid string, wantKeys int, wantErr bool, wantFetches int32) {
		t.Helper()
		keys, err := ks.keysFor(ctx, kid)
		if len(keys) != wantKeys || (err != nil) != wantErr || fetches.Load() != wantFetches {
			t.Fatalf("%s: %d keys, err %v, %d fetches; want %d keys, error %v, %d fetches",
				name, len(keys), err, fetches.Load(), wantKeys, wantErr, wantFetches)
		}
	}
	step("first use fetches; the unparsable key is skipped", "k1", 1, false, 1)
	step("known kid: cached", "k1", 1, false, 1)
	step("unknown kid right after a fetch: rate-limited", "k2", 1, false, 1)
	now = now.Add(11 * time.Second)
	step("unknown kid after the interval: fetched again", "k2", 1, false, 2)
	status.Store(http.StatusInternalServerError)
	now = now.Add(11 * time.Second)
	step("JWKS down: the cached keys stay", "k3", 1, false, 3)
	now = now.Add(keysMaxAge)
	step("old cache, JWKS still down: fetch tried, cached keys kept", "k1", 1, false, 4)

	var status2, fetches2 atomic.Int32
	status2.Store(http.StatusServiceUnavailable)
	cold := &keySet{url: jwksServer(t, &status2, &fetches2), client: &http.Client{Timeout: 5 * time.Second},
		now: func() time.Time { return now }, minRefresh: 10 * time.Second, log: slog.New(slog.DiscardHandler)}
	for i := 0; i < 3; i++ {
		if _, err := cold.keysFor(ctx, "k1"); err == nil {
			t.Fatal("no keys and the JWKS down: want an error")
		}
	}
	if fetches2.Load() != 1 {
		t.Fatalf("failed fetches are rate-limited too: %d fetches, want 1", fetches2.Load())
	}
}
