package assertion

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

func secretA() []byte { return bytes.Repeat([]byte("a"), 32) }
func secretB() []byte { return bytes.Repeat([]byte("b"), 40) }

// testClock is an injected clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts 5 minutes into a rotation slot of one hour.
func newClock() *testClock {
	return &testClock{t: time.Date(2030, 1, 2, 3, 5, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testOptions: slots of 1h, keys published 10m ahead, 60s assertions, 30s cache.
func testOptions(clock *testClock, secrets ...[]byte) Options {
	if len(secrets) == 0 {
		secrets = [][]byte{secretA()}
	}
	return Options{Secrets: secrets, RotationPeriod: time.Hour, PublishLead: 10 * time.Minute,
		TokenTTL: time.Minute, CacheTTL: 30 * time.Second, Now: clock.Now}
}

// testRedis connects to the test Redis and returns a client factory and a fresh key prefix whose
// keys are deleted at cleanup. Without Redis the test is skipped, or fails when CI is set.
func testRedis(t *testing.T) (newClient func() *redis.Client, prefix string) {
	t.Helper()
	addr := os.Getenv("AUTHGATE_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	opts := &redis.Options{Addr: addr, DialTimeout: 2 * time.Second}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			t.Fatal(err)
		}
	}
	probe := redis.NewClient(opts)
	defer probe.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := probe.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s unreachable: %v", addr, err)
		}
		t.Skipf("redis at %s unreachable: %v", addr, err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix = "authgate-test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return func() *redis.Client {
		c := redis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}, prefix
}

// verify checks tok against the JWKS document and returns its kid and claims.
func verify(t *testing.T, jwks []byte, tok string) (string, map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS %s", kid, jwks)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return kid, claims
}

// kids lists the key ids of a JWKS document.
func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	var out []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS holds a private key (kid %s)", k.KeyID)
		}
		out = append(out, k.KeyID)
	}
	return out
}
