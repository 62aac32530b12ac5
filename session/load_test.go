package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
)

// load is Load with cookies on a test request.
func load(t *testing.T, st *Store, cookies ...*http.Cookie) (*Record, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/x", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return st.Load(r, "")
}

// TestLoadShared checks Load on a cached session: the cached record itself (the same pointer
// each time), equal to what Get returns as the caller's own copy; Get's copy can be changed
// without touching it; it stays unchanged while another request touches the session (run
// with -race); and a revocation on another instance still ends it.
func TestLoadShared(t *testing.T) {
	p := newPair(t, nil)
	sess, c := login(t, p.a, testRecord("alice"))
	first, err := load(t, p.b, c) // a backend read that fills the cache
	if err != nil || first == nil {
		t.Fatalf("Load: %v, record %v", err, first != nil)
	}
	if !cached(p.b, first.Handle) {
		t.Fatal("B did not cache the session")
	}
	again, err := load(t, p.b, c)
	if err != nil || again != first {
		t.Fatalf("a cache hit returned another record (err %v)", err)
	}
	own := mustLive(t, p.b, c)
	if own == first || !reflect.DeepEqual(own, first) {
		t.Fatalf("Get's record: same pointer %v, equal %v; want an equal copy", own == first, reflect.DeepEqual(own, first))
	}
	want := first.Clone()
	own.Roles[0], own.Groups[0], own.AccessToken = "changed", "changed", "changed"
	if !reflect.DeepEqual(first, want) {
		t.Fatal("changing Get's copy changed the cached record")
	}

	// Past the touch interval one request touches the session (a clone is written and cached)
	// while others keep reading the record they hold.
	p.clock.Advance(DefaultTouchInterval + time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				rec, err := load(t, p.b, c)
				if err != nil || rec == nil || rec.UserID != "alice" || len(rec.Roles) == 0 {
					t.Errorf("Load during touches: %v", err)
					return
				}
				_ = first.LastSeenAt.String() + first.Roles[0] + first.AccessToken
			}
		}()
	}
	wg.Wait()
	if !reflect.DeepEqual(first, want) {
		t.Fatal("a touch changed a record handed out by Load")
	}
	if cur, _ := load(t, p.b, c); cur == nil || !cur.LastSeenAt.After(first.LastSeenAt) {
		t.Fatal("the touch did not show in the next Load")
	}

	if err := p.a.Revoke(context.Background(), RecordFrom(sess).Handle); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "B refuses the revoked session", func() bool {
		rec, err := load(t, p.b, c)
		return rec == nil && err == nil
	})
}

// TestLoadRefuses checks that Load finds no session (nil record, nil error) wherever Get
// answers a new session, and that the memory store hands out private records.
func TestLoadRefuses(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		_, c := login(t, st, testRecord("bob"))
		forged := &http.Cookie{Name: c.Name, Value: c.Value[:len(c.Value)-2] + "AA"}
		if c.Value[len(c.Value)-2:] == "AA" {
			forged.Value = c.Value[:len(c.Value)-2] + "BB"
		}
		tests := []struct {
			name    string
			cookies []*http.Cookie
		}{
			{name: "no cookie"},
			{name: "forged", cookies: []*http.Cookie{forged}},
			{name: "two cookies", cookies: []*http.Cookie{c, c}},
			{name: "other name", cookies: []*http.Cookie{{Name: "other", Value: c.Value}}},
		}
		for _, tt := range tests {
			if rec, err := load(t, st, tt.cookies...); rec != nil || err != nil {
				t.Errorf("%s: record %v, err %v; want none", tt.name, rec != nil, err)
			}
		}
		a, errA := load(t, st, c)
		b, errB := load(t, st, c)
		if errA != nil || errB != nil || a == nil || b == nil || a.UserID != "bob" {
			t.Fatalf("Load: %v %v", errA, errB)
		}
		if st.cache == nil && a == b {
			t.Error("a store without a cache returned one record twice")
		}
		e.clock.Advance(31 * time.Minute) // past the idle timeout
		if rec, err := load(t, st, c); rec != nil || err != nil {
			t.Errorf("idle session: record %v, err %v; want none", rec != nil, err)
		}
	})
}
