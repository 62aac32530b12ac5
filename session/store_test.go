package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSaveGetRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		cookieName string
		domain     string
		secure     bool
		sameSite   http.SameSite
	}{
		{name: "host prefix lax", cookieName: "__Host-authgate", secure: true, sameSite: http.SameSiteLaxMode},
		{name: "cross-site none", cookieName: "__Secure-authgate", secure: true, sameSite: http.SameSiteNoneMode, domain: "example.com"},
		{name: "plain strict insecure", cookieName: "authgate", sameSite: http.SameSiteStrictMode},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := e.newStore(t, func(o *Options) {
					o.CookieName, o.CookieDomain, o.Secure, o.SameSite = tt.cookieName, tt.domain, tt.secure, tt.sameSite
				})
				want := testRecord("alice")
				sess, c := login(t, st, want)

				if c.Name != tt.cookieName || !c.HttpOnly || c.Secure != tt.secure || c.SameSite != tt.sameSite || c.Path != "/" {
					t.Errorf("cookie = %+v, want name %s, HttpOnly, Secure=%v, SameSite=%v, Path=/", c, tt.cookieName, tt.secure, tt.sameSite)
				}
				if c.Domain != tt.domain {
					t.Errorf("cookie Domain = %q, want %q", c.Domain, tt.domain)
				}
				if want := int((12 * time.Hour).Seconds()); c.MaxAge != want {
					t.Errorf("cookie MaxAge = %d, want %d", c.MaxAge, want)
				}
				if strings.Contains(c.Value, sess.ID) || strings.Contains(c.Value, "SECRET") {
					t.Errorf("cookie value carries the raw id or a token")
				}
				if !validID(sess.ID) || sess.IsNew {
					t.Fatalf("after Save: ID valid=%v IsNew=%v", validID(sess.ID), sess.IsNew)
				}

				e.clock.Advance(10 * time.Second)
				got, err := get(t, st, c)
				if err != nil || got.IsNew || got.ID != sess.ID {
					t.Fatalf("Get: err=%v IsNew=%v same id=%v", err, got.IsNew, got.ID == sess.ID)
				}
				rec := RecordFrom(got)
				if rec.Handle != handleOf(sess.ID) || rec.Handle == sess.ID {
					t.Errorf("Handle = %q, want handleOf(id)", rec.Handle)
				}
				if !rec.CreatedAt.Equal(e.clock.Now().Add(-10*time.Second)) || !rec.ExpiresAt.Equal(rec.CreatedAt.Add(12*time.Hour)) {
					t.Errorf("CreatedAt=%v ExpiresAt=%v, want save time and +12h", rec.CreatedAt, rec.ExpiresAt)
				}
				cmp := *rec
				cmp.Handle, cmp.CreatedAt, cmp.LastSeenAt, cmp.ExpiresAt = "", time.Time{}, time.Time{}, time.Time{}
				if !reflect.DeepEqual(&cmp, testRecord("alice")) {
					t.Errorf("record = %+v, want %+v", cmp, testRecord("alice"))
				}
			})
		}
	})
}

func TestGetRejectsBadCookies(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		_, good := login(t, st, testRecord("alice"))
		otherName := e.newStore(t, func(o *Options) { o.CookieName = "__Host-other" })
		_, signedForOther := login(t, otherName, testRecord("bob"))
		otherSecret := e.newStore(t, func(o *Options) { o.Secrets = [][]byte{secretB()} })
		_, signedByOther := login(t, otherSecret, testRecord("carol"))
		name := st.CookieName()
		flip := []byte(good.Value)
		flip[len(flip)/2] ^= 0x01

		tests := []struct {
			name    string
			cookies []*http.Cookie
		}{
			{name: "no cookie"},
			{name: "empty", cookies: []*http.Cookie{{Name: name, Value: ""}}},
			{name: "garbage", cookies: []*http.Cookie{{Name: name, Value: "not-a-session"}}},
			{name: "redis pattern", cookies: []*http.Cookie{{Name: name, Value: "*"}}},
			{name: "tampered", cookies: []*http.Cookie{{Name: name, Value: string(flip)}}},
			{name: "truncated", cookies: []*http.Cookie{{Name: name, Value: good.Value[:len(good.Value)-4]}}},
			{name: "signed for another cookie name", cookies: []*http.Cookie{{Name: name, Value: signedForOther.Value}}},
			{name: "signed with an unknown secret", cookies: []*http.Cookie{{Name: name, Value: signedByOther.Value}}},
			{name: "over 4096 bytes", cookies: []*http.Cookie{{Name: name, Value: good.Value + strings.Repeat("A", 4096)}}},
			{name: "duplicate junk then valid", cookies: []*http.Cookie{{Name: name, Value: "junk"}, good}},
			{name: "duplicate valid twice", cookies: []*http.Cookie{good, good}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { mustGone(t, st, tt.cookies...) })
		}
		mustLive(t, st, good) // the valid cookie alone still works
	})
}

func TestSecretRotation(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		old := e.newStore(t, func(o *Options) { o.Secrets = [][]byte{secretA()} })
		_, c := login(t, old, testRecord("alice"))

		rotated := e.newStore(t, func(o *Options) { o.Secrets = [][]byte{secretB(), secretA()} })
		rec := mustLive(t, rotated, c)
		if rec.AccessToken != "access-alice-SECRET" {
			t.Errorf("after rotation AccessToken = %q, want the saved one", rec.AccessToken)
		}
		_, c2 := login(t, rotated, testRecord("bob")) // signed and sealed with the new secret
		if rec := mustLive(t, e.newStore(t, func(o *Options) { o.Secrets = [][]byte{secretB()} }), c2); rec.RefreshToken != "refresh-bob-SECRET" {
			t.Errorf("new-secret session: RefreshToken = %q", rec.RefreshToken)
		}

		removed := e.newStore(t, func(o *Options) { o.Secrets = [][]byte{secretB()} })
		mustGone(t, removed, c)
	})
}

func TestTimeouts(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, func(o *Options) { o.IdleTimeout, o.AbsoluteTimeout = 30*time.Minute, time.Hour })
		t.Run("idle", func(t *testing.T) {
			sess, c := login(t, st, testRecord("idle"))
			key := st.sessionKey(handleOf(sess.ID))
			if ttl := e.ttl(t, key); ttl > 30*time.Minute || ttl < 29*time.Minute {
				t.Errorf("TTL after save = %v, want ~30m (idle)", ttl)
			}
			e.clock.Advance(29 * time.Minute)
			mustLive(t, st, c) // touches
			e.clock.Advance(30*time.Minute + time.Second)
			mustGone(t, st, c)
			if _, ok := e.rawGet(t, key); ok {
				t.Errorf("idle-expired record still stored")
			}
		})
		t.Run("absolute", func(t *testing.T) {
			sess, c := login(t, st, testRecord("abs"))
			key := st.sessionKey(handleOf(sess.ID))
			for range 2 { // active every 20m: idle never hits
				e.clock.Advance(20 * time.Minute)
				mustLive(t, st, c)
			}
			e.clock.Advance(10 * time.Minute) // 50m: 10m of absolute left
			mustLive(t, st, c)
			if ttl := e.ttl(t, key); ttl > 10*time.Minute || ttl < 9*time.Minute {
				t.Errorf("TTL near the absolute limit = %v, want ~10m (remaining absolute)", ttl)
			}
			e.clock.Advance(10 * time.Minute) // exactly 60m
			mustGone(t, st, c)
		})
	})
}

func TestTouch(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, func(o *Options) { o.TouchInterval = time.Minute })
		sess, c := login(t, st, testRecord("alice"))
		handle := handleOf(sess.ID)
		saved := e.clock.Now()

		e.clock.Advance(30 * time.Second)
		mustLive(t, st, c)
		if rec, _ := st.Lookup(context.Background(), handle); rec == nil || !rec.LastSeenAt.Equal(saved) {
			t.Fatalf("LastSeenAt rewritten before TouchInterval: %v", rec)
		}
		e.clock.Advance(31 * time.Second)
		mustLive(t, st, c)
		if rec, _ := st.Lookup(context.Background(), handle); rec == nil || !rec.LastSeenAt.Equal(e.clock.Now()) {
			t.Fatalf("LastSeenAt not touched after TouchInterval: %v", rec)
		}

		// A touch that read the record before an Update must not overwrite the update.
		key := st.sessionKey(handle)
		oldRaw, _ := e.rawGet(t, key)
		oldRec, err := st.keys.decodeRecord(handle, oldRaw, true)
		if err != nil {
			t.Fatal(err)
		}
		upd := *oldRec
		upd.AccessToken = "access-refreshed"
		if err := st.Update(context.Background(), &upd); err != nil {
			t.Fatalf("Update: %v", err)
		}
		e.clock.Advance(2 * time.Minute)
		for _, old := range [][]byte{nil, oldRaw} { // in place (tag check), and compare-and-set
			if _, _, touched, err := st.touch(context.Background(), key, old, tagOf(oldRaw), oldRec.clone(), e.clock.Now(), st.cache.snapshot()); err != nil || touched {
				t.Fatalf("stale touch (old %v): touched %v, err %v", old != nil, touched, err)
			}
		}
		if rec := mustLive(t, st, c); rec.AccessToken != "access-refreshed" {
			t.Errorf("AccessToken = %q after a stale touch, want the updated one", rec.AccessToken)
		}
	})
}

func TestNewNeverReusesIncomingCookie(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		old, c := login(t, st, testRecord("alice"))
		r := httptest.NewRequest(http.MethodGet, "/.auth/callback", nil)
		r.AddCookie(c)
		sess, err := st.New(r, st.CookieName())
		if err != nil || !sess.IsNew || sess.ID != "" || RecordFrom(sess) != nil {
			t.Fatalf("New: err=%v IsNew=%v ID empty=%v", err, sess.IsNew, sess.ID == "")
		}
		SetRecord(sess, testRecord("alice"))
		w := httptest.NewRecorder()
		if err := st.Save(r, w, sess); err != nil {
			t.Fatal(err)
		}
		if sess.ID == old.ID || w.Result().Cookies()[0].Value == c.Value {
			t.Fatal("Save after New reused the incoming session id")
		}
	})
}

func TestSaveMaxAgeNegativeDeletes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		_, c := login(t, st, testRecord("alice"))
		sess, _ := get(t, st, c)
		sess.Options.MaxAge = -1
		w := httptest.NewRecorder()
		if err := st.Save(httptest.NewRequest(http.MethodPost, "/.auth/logout", nil), w, sess); err != nil {
			t.Fatalf("Save(MaxAge<0): %v", err)
		}
		got := w.Result().Cookies()
		if len(got) != 1 || got[0].Name != c.Name || got[0].MaxAge >= 0 || got[0].Value != "" || !got[0].HttpOnly || got[0].Path != "/" {
			t.Errorf("Set-Cookie = %+v, want one expiring cookie of the same name", got)
		}
		mustGone(t, st, c)

		w = httptest.NewRecorder()
		st.ClearCookie(w)
		if h := w.Header().Get("Set-Cookie"); !strings.Contains(h, "Max-Age=0") || !strings.HasPrefix(h, c.Name+"=;") {
			t.Errorf("ClearCookie wrote %q", h)
		}
	})
}

func TestTokensEncryptedAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		sess, _ := login(t, st, testRecord("alice"))
		raw, ok := e.rawGet(t, st.sessionKey(handleOf(sess.ID)))
		if !ok {
			t.Fatal("no record under the session key")
		}
		if !strings.Contains(string(raw), "alice@example.com") {
			t.Fatalf("raw record lacks the email: looking at the wrong key?")
		}
		for _, secret := range []string{"access-alice-SECRET", "refresh-alice-SECRET", "idtok-alice-SECRET", sess.ID} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("stored record contains %q in plaintext", secret)
			}
		}
	})
}

func TestSealedTokensBoundToHandle(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, nil)
		a, _ := login(t, st, testRecord("alice"))
		b, cb := login(t, st, testRecord("mallory"))
		rawA, _ := e.rawGet(t, st.sessionKey(handleOf(a.ID)))
		if _, err := e.b.set(context.Background(), st.sessionKey(handleOf(b.ID)), rawA, time.Hour, setXX); err != nil {
			t.Fatal(err)
		}
		mustGone(t, st, cb)
		if _, err := st.Lookup(context.Background(), handleOf(b.ID)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup of a moved blob: err = %v, want ErrNotFound", err)
		}
		if rec, err := st.Lookup(context.Background(), handleOf(a.ID)); err != nil || rec.AccessToken != "access-alice-SECRET" {
			t.Errorf("Lookup of the original: %v", err)
		}
	})
}

func TestRedisUnreachable(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	clock := newClock()
	st, err := NewRedis(client, Options{Secrets: [][]byte{secretA()}, Secure: true, OpTimeout: 200 * time.Millisecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	value, err := st.keys.encodeCookie(st.CookieName(), mustID(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := get(t, st, &http.Cookie{Name: st.CookieName(), Value: value})
	if !errors.Is(err, ErrUnavailable) || !sess.IsNew || RecordFrom(sess) != nil {
		t.Errorf("Get: err=%v IsNew=%v, want ErrUnavailable and a new session", err, sess.IsNew)
	}
	if rec, err := load(t, st, &http.Cookie{Name: st.CookieName(), Value: value}); !errors.Is(err, ErrUnavailable) || rec != nil {
		t.Errorf("Load: err=%v record=%v, want ErrUnavailable and no record", err, rec != nil)
	}
	fresh, _ := st.New(httptest.NewRequest(http.MethodGet, "/", nil), "")
	SetRecord(fresh, testRecord("alice"))
	w := httptest.NewRecorder()
	if err := st.Save(httptest.NewRequest(http.MethodGet, "/", nil), w, fresh); !errors.Is(err, ErrUnavailable) || len(w.Result().Cookies()) != 0 {
		t.Errorf("Save: err=%v cookies=%d, want ErrUnavailable and no cookie", err, len(w.Result().Cookies()))
	}
	checks := map[string]error{
		"Ping":        st.Ping(ctx),
		"Revoke":      st.Revoke(ctx, handleOf(mustID(t))),
		"PutFlow":     st.PutFlow(ctx, "state", Flow{}, time.Minute),
		"Update":      st.Update(ctx, &Record{Handle: handleOf(mustID(t)), CreatedAt: clock.Now(), LastSeenAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)}),
		"TakeFlow":    func() error { _, err := st.TakeFlow(ctx, "state"); return err }(),
		"ListSubject": func() error { _, err := st.ListSubject(ctx, "https://idp.example.com/", "u"); return err }(),
		"List":        func() error { _, err := st.List(ctx, 10); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
}

func mustID(t *testing.T) string {
	t.Helper()
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "no secret", opts: Options{Secure: true}},
		{name: "short secret", opts: Options{Secure: true, Secrets: [][]byte{secretA(), []byte("short")}}},
		{name: "host prefix without secure", opts: Options{Secrets: [][]byte{secretA()}}},
		{name: "host prefix with domain", opts: Options{Secure: true, CookieDomain: "example.com", Secrets: [][]byte{secretA()}}},
		{name: "secure prefix without secure", opts: Options{CookieName: "__Secure-x", Secrets: [][]byte{secretA()}}},
		{name: "samesite none without secure", opts: Options{CookieName: "x", SameSite: http.SameSiteNoneMode, Secrets: [][]byte{secretA()}}},
		{name: "bad cookie name", opts: Options{CookieName: "a b", Secrets: [][]byte{secretA()}}},
		{name: "hash tag in prefix", opts: Options{Secure: true, KeyPrefix: "x{y}:", Secrets: [][]byte{secretA()}}},
		{name: "negative timeout", opts: Options{Secure: true, IdleTimeout: -time.Second, Secrets: [][]byte{secretA()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewMemory(tt.opts); err == nil {
				t.Error("NewMemory accepted unsafe options")
			}
		})
	}
	if _, err := NewMemory(Options{Secure: true, Secrets: [][]byte{secretA()}}); err != nil {
		t.Errorf("NewMemory with defaults: %v", err)
	}
}
