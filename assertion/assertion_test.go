package assertion

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// eachBackend runs fn with a factory of signers that share one backend: process memory, then
// the real Redis (each signer on its own client, as separate instances would be).
func eachBackend(t *testing.T, fn func(t *testing.T, clock *testClock, newSigner func(o Options) *Signer)) {
	t.Run("memory", func(t *testing.T) {
		clock := newClock()
		var shared *Signer
		fn(t, clock, func(o Options) *Signer {
			if shared == nil {
				s, err := NewMemory(o)
				if err != nil {
					t.Fatal(err)
				}
				shared = s
			}
			return shared
		})
	})
	t.Run("redis", func(t *testing.T) {
		newClient, prefix := testRedis(t)
		clock := newClock()
		fn(t, clock, func(o Options) *Signer {
			o.KeyPrefix = prefix
			s, err := NewRedis(newClient(), o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func TestSignProducesVerifiableAssertion(t *testing.T) {
	eachBackend(t, func(t *testing.T, clock *testClock, newSigner func(Options) *Signer) {
		s := newSigner(testOptions(clock))
		ctx := context.Background()
		tok, exp, err := s.Sign(ctx, Claims{Issuer: "https://app.example.com", Audience: "admin", Subject: "u-1",
			Email: "alice@example.com", Roles: []string{"super_admin"}})
		if err != nil {
			t.Fatal(err)
		}
		jwks, err := s.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kid, claims := verify(t, jwks, tok)
		jws, _ := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		h := jws.Signatures[0].Protected
		if h.Algorithm != "ES256" || h.KeyID != kid || h.ExtraHeaders["typ"] != "JWT" {
			t.Errorf("header alg=%q kid=%q typ=%v", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"])
		}
		now := clock.Now().Unix()
		want := map[string]any{"iss": "https://app.example.com", "aud": "admin", "sub": "u-1",
			"email": "alice@example.com", "iat": float64(now), "exp": float64(now + 60)}
		for k, v := range want {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		if r, ok := claims["roles"].([]any); !ok || len(r) != 1 || r[0] != "super_admin" {
			t.Errorf("roles = %v", claims["roles"])
		}
		if g, ok := claims["groups"].([]any); !ok || len(g) != 0 {
			t.Errorf("groups = %v, want an empty array", claims["groups"])
		}
		if !exp.Equal(time.Unix(now+60, 0)) {
			t.Errorf("expiry %v, want %v", exp, time.Unix(now+60, 0))
		}
	})
}

func TestInstancesShareOneKey(t *testing.T) {
	newClient, prefix := testRedis(t)
	clock := newClock()
	o := testOptions(clock)
	o.KeyPrefix = prefix
	signers := make([]*Signer, 4)
	for i := range signers {
		s, err := NewRedis(newClient(), o)
		if err != nil {
			t.Fatal(err)
		}
		signers[i] = s
	}
	toks := make([]string, len(signers))
	var wg sync.WaitGroup
	for i, s := range signers { // all start at once: one key must win
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, _, err := s.Sign(context.Background(), Claims{Subject: "u", Audience: "a"})
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	var first string
	for i, tok := range toks {
		for j, s := range signers {
			jwks, err := s.JWKS(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(kids(t, jwks)); n != 1 {
				t.Errorf("signer %d lists %d keys, want 1", j, n)
			}
			kid, _ := verify(t, jwks, tok) // every instance's JWKS verifies every instance's token
			if first == "" {
				first = kid
			}
			if kid != first {
				t.Errorf("signer %d signed with kid %s, signer 0 with %s", i, kid, first)
			}
		}
	}
}

// TestRotation walks one key change: the next key is listed PublishLead before it signs, and the
// old one stays listed until its last assertion has expired.
func TestRotation(t *testing.T) {
	eachBackend(t, func(t *testing.T, clock *testClock, newSigner func(Options) *Signer) {
		s := newSigner(testOptions(clock))
		other := newSigner(testOptions(clock)) // a second instance (the same one for memory)
		ctx := context.Background()
		at := func(hms string) time.Time {
			tm, _ := time.Parse("15:04:05", hms)
			return time.Date(2030, 1, 2, tm.Hour(), tm.Minute(), tm.Second(), 0, time.UTC)
		}
		var kidA, kidB, lastA string
		steps := []struct {
			name     string
			at       time.Time
			wantSign string // "A" or "B"
			wantKeys []string
		}{
			{name: "first key signs at once", at: at("03:05:00"), wantSign: "A", wantKeys: []string{"A"}},
			{name: "before publication", at: at("03:49:59"), wantSign: "A", wantKeys: []string{"A"}},
			{name: "next key published", at: at("03:50:00"), wantSign: "A", wantKeys: []string{"A", "B"}},
			{name: "end of the period", at: at("03:59:59"), wantSign: "A", wantKeys: []string{"A", "B"}},
			{name: "next key signs", at: at("04:00:00"), wantSign: "B", wantKeys: []string{"A", "B"}},
			{name: "old key kept for live assertions", at: at("04:21:29"), wantSign: "B", wantKeys: []string{"A", "B"}},
		}
		for _, st := range steps {
			clock.Set(st.at)
			tok, _, err := s.Sign(ctx, Claims{Subject: "u", Audience: "a"})
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			jwks, err := other.JWKS(ctx)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			kid, _ := verify(t, jwks, tok)
			listed := kids(t, jwks)
			if kidA == "" {
				kidA = kid
			}
			if kidB == "" && len(listed) == 2 {
				kidB = listed[0]
				if kidB == kidA {
					kidB = listed[1]
				}
			}
			names := map[string]string{kidA: "A", kidB: "B"}
			if names[kid] != st.wantSign {
				t.Errorf("%s: signed with %s, want %s", st.name, names[kid], st.wantSign)
			}
			var got []string
			for _, k := range listed {
				got = append(got, names[k])
			}
			slices.Sort(got)
			if !slices.Equal(got, st.wantKeys) {
				t.Errorf("%s: JWKS lists %v, want %v", st.name, got, st.wantKeys)
			}
			if names[kid] == "A" {
				lastA = tok
			}
		}
		// The last assertion of A (signed at 03:59:59) still verifies until it expires.
		clock.Set(at("04:00:58"))
		jwks, _ := other.JWKS(ctx)
		verify(t, jwks, lastA)

		// After that the backend drops A: by the injected clock in memory, by its TTL in Redis.
		if rb, ok := s.b.(*redisBackend); ok {
			ttl, err := rb.c.PTTL(ctx, s.backendKey(s.slotOf(at("03:05:00")))).Result()
			if want := at("04:21:30").Sub(at("03:05:00")); err != nil || ttl > want || ttl < want-time.Minute {
				t.Errorf("redis TTL of the first key = %v (%v), want about %v", ttl, err, want)
			}
			return
		}
		clock.Set(at("04:21:31"))
		jwks, _ = s.JWKS(ctx)
		if got := kids(t, jwks); len(got) != 1 || got[0] != kidB {
			t.Errorf("old key still listed after its expiry: %v", got)
		}
	})
}

// TestKeyMadeLateWaitsForPublication: when no instance ran while the next key was due to be
// published, the new key is listed at once but the old one keeps signing for PublishLead.
func TestKeyMadeLateWaitsForPublication(t *testing.T) {
	clock := newClock()
	s, err := NewMemory(testOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sign := func() string {
		tok, _, err := s.Sign(ctx, Claims{Subject: "u", Audience: "a"})
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := s.JWKS(ctx)
		kid, _ := verify(t, jwks, tok)
		return kid
	}
	kidA := sign() // 03:05
	clock.Set(time.Date(2030, 1, 2, 4, 5, 0, 0, time.UTC))
	if got := sign(); got != kidA {
		t.Errorf("a key made at 04:05 signed before it was published for PublishLead")
	}
	jwks, _ := s.JWKS(ctx)
	if n := len(kids(t, jwks)); n != 2 {
		t.Errorf("JWKS lists %d keys, want the old and the new one", n)
	}
	clock.Set(time.Date(2030, 1, 2, 4, 15, 0, 0, time.UTC))
	if got := sign(); got == kidA {
		t.Errorf("the new key does not sign after PublishLead")
	}
}

// TestStoredKeysAreSealed: an entry that does not open with the instance's secrets (forged,
// moved to another slot, sealed with an unknown secret) is neither listed nor used.
func TestStoredKeysAreSealed(t *testing.T) {
	newClient, prefix := testRedis(t)
	clock := newClock()
	ctx := context.Background()
	mk := func(secrets ...[]byte) *Signer {
		o := testOptions(clock, secrets...)
		o.KeyPrefix = prefix
		s, err := NewRedis(newClient(), o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := mk(secretA())
	tok, _, err := old.Sign(ctx, Claims{Subject: "u", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	oldJWKS, _ := old.JWKS(ctx)
	kidA, _ := verify(t, oldJWKS, tok)

	// Rotation of the secrets: the new secret first, the old one still listed.
	rotated := mk(secretB(), secretA())
	tok2, _, err := rotated.Sign(ctx, Claims{Subject: "u", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := verify(t, oldJWKS, tok2); kid != kidA {
		t.Errorf("instance with rotated secrets signs with %s, want the shared key %s", kid, kidA)
	}

	// Only an unknown secret: nothing to sign with, nothing published.
	stranger := mk(secretB())
	if _, _, err := stranger.Sign(ctx, Claims{}); !errors.Is(err, ErrNoKey) {
		t.Errorf("Sign with an unknown secret: %v, want ErrNoKey", err)
	}
	if jwks, _ := stranger.JWKS(ctx); len(kids(t, jwks)) != 0 {
		t.Errorf("a key that does not open is published: %s", jwks)
	}

	// A copy of the current key moved into the next slot does not open there.
	rc := newClient()
	n := old.slotOf(clock.Now())
	val, err := rc.Get(ctx, old.backendKey(n)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Set(ctx, old.backendKey(n+1), val, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Set(ctx, old.backendKey(n-1), []byte("forged"), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Set(clock.Now().Add(50 * time.Minute)) // 03:55: the next key is due for publication
	fresh := mk(secretA())
	jwks, err := fresh.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(t, jwks); len(got) != 1 || got[0] != kidA {
		t.Errorf("JWKS lists %v, want only %s", got, kidA)
	}
}

func TestBackendOutage(t *testing.T) {
	t.Run("no cached keys fails closed", func(t *testing.T) {
		clock := newClock()
		s, err := NewRedis(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1}), testOptions(clock))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Sign(context.Background(), Claims{}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Sign = %v, want ErrUnavailable", err)
		}
		if _, err := s.JWKS(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Errorf("JWKS = %v, want ErrUnavailable", err)
		}
	})
	t.Run("cached keys serve for PublishLead", func(t *testing.T) {
		newClient, prefix := testRedis(t)
		clock := newClock()
		o := testOptions(clock)
		o.KeyPrefix = prefix
		c := newClient()
		s, err := NewRedis(c, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, _, err := s.Sign(ctx, Claims{}); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		start := clock.Now()
		clock.Set(start.Add(time.Minute))
		if _, _, err := s.Sign(ctx, Claims{}); err != nil {
			t.Errorf("Sign with a stale cache during an outage: %v", err)
		}
		clock.Set(start.Add(11 * time.Minute))
		if _, _, err := s.Sign(ctx, Claims{}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Sign after PublishLead of outage = %v, want ErrUnavailable", err)
		}
	})
}

func TestOptionsValidation(t *testing.T) {
	ok := testOptions(newClock())
	tests := []struct {
		name    string
		mutate  func(o *Options)
		wantErr bool
	}{
		{name: "valid", mutate: func(*Options) {}},
		{name: "defaults", mutate: func(o *Options) { *o = Options{Secrets: o.Secrets} }},
		{name: "no secret", mutate: func(o *Options) { o.Secrets = nil }, wantErr: true},
		{name: "short secret", mutate: func(o *Options) { o.Secrets = [][]byte{[]byte("short")} }, wantErr: true},
		{name: "hash tag in prefix", mutate: func(o *Options) { o.KeyPrefix = "a{b}:" }, wantErr: true},
		{name: "period too short", mutate: func(o *Options) { o.RotationPeriod = 20 * time.Minute }, wantErr: true},
		{name: "lead below cache", mutate: func(o *Options) { o.PublishLead = 10 * time.Second }, wantErr: true},
		{name: "sub-second ttl", mutate: func(o *Options) { o.TokenTTL = time.Millisecond }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			_, err := NewMemory(o)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewMemory error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
