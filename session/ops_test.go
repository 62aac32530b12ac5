package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRevoke(t *testing.T) {
	const iss = "https://idp.example.com/"
	tests := []struct {
		name     string
		revoke   func(st *Store, h map[string]string) (int, error)
		wantN    int
		wantGone []string
	}{
		{name: "handle", revoke: func(st *Store, h map[string]string) (int, error) {
			return 1, st.Revoke(context.Background(), h["a1"])
		}, wantN: 1, wantGone: []string{"a1"}},
		{name: "idp session", revoke: func(st *Store, _ map[string]string) (int, error) {
			return st.RevokeIdPSession(context.Background(), iss, "sid-1")
		}, wantN: 1, wantGone: []string{"a1"}},
		{name: "subject", revoke: func(st *Store, _ map[string]string) (int, error) {
			return st.RevokeSubject(context.Background(), iss, "sub-alice")
		}, wantN: 2, wantGone: []string{"a1", "a2"}},
		{name: "subject of another issuer", revoke: func(st *Store, _ map[string]string) (int, error) {
			return st.RevokeSubject(context.Background(), "https://other.example.com/", "sub-alice")
		}, wantN: 0},
		{name: "empty sid matches nothing", revoke: func(st *Store, _ map[string]string) (int, error) {
			return st.RevokeIdPSession(context.Background(), iss, "")
		}, wantN: 0},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := e.newStore(t, func(o *Options) { o.KeyPrefix += fmt.Sprintf("case%d:", i) })
				handles, cookies := map[string]string{}, map[string]*http.Cookie{}
				for name, r := range map[string]*Record{
					"a1": withSID(testRecord("alice"), "sid-1"),
					"a2": withSID(testRecord("alice"), "sid-2"),
					"b1": withSID(testRecord("bob"), "sid-3"),
				} {
					sess, c := login(t, st, r)
					handles[name], cookies[name] = handleOf(sess.ID), c
				}
				n, err := tt.revoke(st, handles)
				if err != nil || n != tt.wantN {
					t.Fatalf("revoke: n=%d err=%v, want %d", n, err, tt.wantN)
				}
				for name, c := range cookies {
					if slices.Contains(tt.wantGone, name) {
						mustGone(t, st, c)
						if _, err := st.Lookup(context.Background(), handles[name]); !errors.Is(err, ErrNotFound) {
							t.Errorf("Lookup(%s) after revoke: %v", name, err)
						}
					} else {
						mustLive(t, st, c)
					}
				}
				if n, _ := tt.revoke(st, handles); n != 0 && tt.name != "handle" {
					t.Errorf("repeated revoke ended %d sessions, want 0", n)
				}
			})
		}
		t.Run("handle twice and malformed", func(t *testing.T) {
			st := e.newStore(t, func(o *Options) { o.KeyPrefix += "twice:" })
			sess, _ := login(t, st, testRecord("alice"))
			h := handleOf(sess.ID)
			if err := st.Revoke(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			for _, handle := range []string{h, "*", "", h + "x", "../../x"} {
				if err := st.Revoke(context.Background(), handle); !errors.Is(err, ErrNotFound) {
					t.Errorf("Revoke(%q) = %v, want ErrNotFound", handle, err)
				}
			}
			if recs, _ := st.ListSubject(context.Background(), iss, "sub-alice"); len(recs) != 0 {
				t.Errorf("ListSubject after revoke = %d records", len(recs))
			}
		})
	})
}

func withSID(r *Record, sid string) *Record {
	r.IdPSessionID = sid
	return r
}

func TestUpdate(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		ctx := context.Background()
		sess, c := login(t, st, testRecord("alice"))
		rec := RecordFrom(sess)

		rec.AccessToken, rec.TokenExpiry = "access-2", e.clock.Now().Add(time.Hour)
		if err := st.Update(ctx, rec); err != nil {
			t.Fatalf("Update live: %v", err)
		}
		if got := mustLive(t, st, c); got.AccessToken != "access-2" || !got.TokenExpiry.Equal(rec.TokenExpiry) {
			t.Errorf("after Update: AccessToken=%q", got.AccessToken)
		}

		if err := st.Revoke(ctx, rec.Handle); err != nil {
			t.Fatal(err)
		}
		rec.AccessToken = "access-3"
		if err := st.Update(ctx, rec); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update revoked: err = %v, want ErrNotFound", err)
		}
		if _, ok := e.rawGet(t, st.sessionKey(rec.Handle)); ok {
			t.Fatal("Update resurrected a revoked session")
		}
		mustGone(t, st, c)

		// Saving the (stale) gorilla session after a revoke must not resurrect it either.
		err := st.Save(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder(), sess)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Save of a revoked session: err = %v, want ErrNotFound", err)
		}
		mustGone(t, st, c)
	})
}

func TestListSubjectAndList(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		ctx := context.Background()
		var alice []string
		for i := range 3 {
			sess, _ := login(t, st, testRecord("alice"))
			alice = append(alice, handleOf(sess.ID))
			e.clock.Advance(time.Duration(i+1) * time.Second)
		}
		login(t, st, testRecord("bob"))
		// Drop one of alice's records behind the store's back: ListSubject must prune its index entry.
		if _, err := e.b.delMany(ctx, []string{st.sessionKey(alice[0])}); err != nil {
			t.Fatal(err)
		}
		recs, err := st.ListSubject(ctx, testIssuer, "sub-alice")
		if err != nil || len(recs) != 2 {
			t.Fatalf("ListSubject: %d records, err %v; want 2", len(recs), err)
		}
		if recs[0].Handle != alice[2] || recs[1].Handle != alice[1] {
			t.Errorf("ListSubject order = %s,%s; want newest first", recs[0].Handle, recs[1].Handle)
		}
		for _, r := range recs {
			if r.AccessToken != "" || r.RefreshToken != "" || r.IDToken != "" {
				t.Errorf("ListSubject returned tokens")
			}
		}
		if members, _ := e.b.members(ctx, st.subIndex(testIssuer, "sub-alice")); len(members) != 2 {
			t.Errorf("subject index has %d members after pruning, want 2", len(members))
		}
		if recs, err := st.ListSubject(ctx, "https://other.example.com/", "sub-alice"); err != nil || len(recs) != 0 {
			t.Errorf("ListSubject of another issuer: %d records, %v; want none", len(recs), err)
		}

		all, err := st.List(ctx, 0)
		if err != nil || len(all) != 3 {
			t.Fatalf("List: %d records, err %v; want 3", len(all), err)
		}
		if two, _ := st.List(ctx, 2); len(two) > 2 {
			t.Errorf("List(2) returned %d records", len(two))
		}
	})
}

func TestTakeFlowSingleUse(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		ctx := context.Background()
		want := Flow{Nonce: "n", Verifier: "verifier-SECRET", ReturnTo: "/dash", Provider: "default", Binding: "b", CreatedAt: e.clock.Now()}
		if err := st.PutFlow(ctx, "state-1", want, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := st.PutFlow(ctx, "state-1", want, time.Minute); err == nil {
			t.Error("PutFlow reused a live state")
		}
		if raw, _ := e.rawGet(t, st.flowKey("state-1")); strings.Contains(string(raw), "verifier-SECRET") {
			t.Error("flow verifier stored in plaintext")
		}

		const n = 20
		var (
			wg             sync.WaitGroup
			mu             sync.Mutex
			wins, notFound int
		)
		for range n {
			wg.Go(func() {
				f, err := st.TakeFlow(ctx, "state-1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && f == want:
					wins++
				case errors.Is(err, ErrNotFound):
					notFound++
				default:
					t.Errorf("TakeFlow: %+v, %v", f, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || notFound != n-1 {
			t.Errorf("wins=%d notFound=%d, want 1 and %d", wins, notFound, n-1)
		}
		if _, err := st.TakeFlow(ctx, "never-stored"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TakeFlow unknown state: %v", err)
		}
	})
}

func TestFlowExpires(t *testing.T) {
	clock := newClock()
	st, err := NewMemory(Options{Secure: true, Secrets: [][]byte{secretA()}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutFlow(context.Background(), "s", Flow{Nonce: "n"}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	if _, err := st.TakeFlow(context.Background(), "s"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TakeFlow after the TTL: %v, want ErrNotFound", err)
	}
}

func TestTryLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		ctx := context.Background()
		unlock, ok, err := st.TryLock(ctx, "refresh:h", time.Minute)
		if err != nil || !ok {
			t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
		}
		if _, ok, err := st.TryLock(ctx, "refresh:h", time.Minute); err != nil || ok {
			t.Fatalf("second TryLock: ok=%v err=%v, want held", ok, err)
		}
		if err := unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.TryLock(ctx, "refresh:h", time.Minute); err != nil || !ok {
			t.Fatalf("TryLock after unlock: ok=%v err=%v", ok, err)
		}
	})
}
