package session

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCountFlow(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		ctx := context.Background()
		for want := int64(1); want <= 3; want++ {
			n, err := st.CountFlow(ctx, "binding-a", time.Minute)
			if err != nil {
				t.Fatalf("CountFlow: %v", err)
			}
			if n != want {
				t.Fatalf("count %d, want %d", n, want)
			}
		}
		if n, err := st.CountFlow(ctx, "binding-b", time.Minute); err != nil || n != 1 {
			t.Fatalf("another binding: %d, %v; want 1 (counters are per binding)", n, err)
		}
		key := e.prefix + "fb:{" + hashKey("binding-a") + "}"
		if strings.Contains(key, "binding-a") {
			t.Fatal("the key must not hold the binding itself")
		}
		if d := e.ttl(t, key); d <= 0 || d > time.Minute {
			t.Fatalf("counter TTL %v, want within (0, 1m]", d)
		}
		if _, err := st.CountFlow(ctx, "", time.Minute); err == nil {
			t.Fatal("an empty binding must be refused")
		}
	})
}

// TestCountFlowWindowEnds checks that the count starts again once the window's TTL ran out
// (memory backend: the injected clock; Redis expiry is Redis's own).
func TestCountFlowWindowEnds(t *testing.T) {
	clock := newClock()
	e := &env{name: "memory", clock: clock, b: newMemBackend(clock.Now), prefix: "t:"}
	st := e.newStore(t, nil)
	ctx := context.Background()
	for range 5 {
		if _, err := st.CountFlow(ctx, "b", 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute) // later counts do not extend the window
	}
	clock.Advance(5 * time.Minute)
	if n, _ := st.CountFlow(ctx, "b", 10*time.Minute); n != 1 {
		t.Fatalf("after the window: count %d, want 1", n)
	}
}
