package session

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The idle-expiry touch writes the 8 bytes of LastSeenAt in place and renews the TTL; the rest
// of the stored record (sealed tokens included) stays byte for byte.
func TestTouchInPlace(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		st := e.newStore(t, func(o *Options) { o.TouchInterval = time.Minute; o.IdleTimeout = 10 * time.Minute })
		sess, c := login(t, st, testRecord("alice"))
		key := st.sessionKey(handleOf(sess.ID))
		before, _ := e.rawGet(t, key)
		e.clock.Advance(2 * time.Minute)
		rec := mustLive(t, st, c)
		after, ok := e.rawGet(t, key)
		if !ok || len(after) != len(before) || !bytes.Equal(after[:v2LastSeenAt], before[:v2LastSeenAt]) ||
			!bytes.Equal(after[v2Tag:], before[v2Tag:]) || bytes.Equal(after, before) {
			t.Fatalf("touch did not rewrite exactly LastSeenAt")
		}
		if !rec.LastSeenAt.Equal(e.clock.Now()) {
			t.Errorf("LastSeenAt = %v, want now", rec.LastSeenAt)
		}
		if d := e.ttl(t, key); d < 9*time.Minute || d > 10*time.Minute {
			t.Errorf("TTL after touch = %v, want the idle timeout", d)
		}
		if got, err := st.Lookup(context.Background(), rec.Handle); err != nil || !got.LastSeenAt.Equal(e.clock.Now()) || got.AccessToken != "access-alice-SECRET" {
			t.Errorf("Lookup after touch: %v", err)
		}
	})
}

// A record in format 1 (written before format 2) is served, and rewritten as format 2 on its
// first read; its legacy index sets still find it for revocation and are cleaned.
func TestFormat1Migration(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		st := e.newStore(t, nil)
		sess, c := login(t, st, testRecord("alice"))
		h := handleOf(sess.ID)
		key := st.sessionKey(h)
		rec, err := st.Lookup(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		v1, err := st.keys.encodeRecordV1(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.b.set(ctx, key, v1, time.Hour, setXX); err != nil {
			t.Fatal(err)
		}
		got := mustLive(t, st, c)
		if got.AccessToken != rec.AccessToken || got.IDToken != rec.IDToken || got.UserID != "alice" {
			t.Fatalf("format-1 record read back wrong")
		}
		if raw, _ := e.rawGet(t, key); len(raw) == 0 || raw[0] != recordV2 {
			t.Fatalf("format-1 record not rewritten as format 2 on read")
		}
		if e.client == nil {
			return // the memory store never had format-1 index sets
		}
		if err := st.Revoke(ctx, h); err != nil {
			t.Fatal(err)
		}
		// Sessions indexed only in the old sets (as a format-1 instance left them).
		old := []string{st.sidIndex(rec.Issuer, rec.IdPSessionID).legacy, st.subIndex(rec.Issuer, rec.Subject).legacy}
		for i, tt := range []struct {
			name   string
			revoke func() (int, error)
		}{
			{"sid", func() (int, error) { return st.RevokeIdPSession(ctx, rec.Issuer, rec.IdPSessionID) }},
			{"sub", func() (int, error) { return st.RevokeSubject(ctx, rec.Issuer, rec.Subject) }},
		} {
			sess, c := login(t, st, testRecord("alice"))
			h := handleOf(sess.ID)
			for _, x := range st.indexes(rec) {
				if err := e.client.HDel(ctx, x.key, x.field(h)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, set := range old {
				if err := e.client.SAdd(ctx, set, h).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := tt.revoke(); err != nil || n != 1 {
				t.Fatalf("%s: revoked %d, %v; want the session of the legacy set", tt.name, n, err)
			}
			mustGone(t, st, c)
			if n, _ := e.client.SCard(ctx, old[i]).Result(); n != 0 {
				t.Errorf("%s: legacy set keeps %d members after revocation", tt.name, n)
			}
		}
	})
}

// Indexes are entries in shared small hashes (listpack in Redis): an 8-byte lookup hash + the
// handle packed in 17 bytes, valued with the second after which the session is certainly over;
// pruned past it; lookups that share a bucket stay apart.
func TestIndexBuckets(t *testing.T) {
	client, prefix := redisForTest(t)
	e := &env{clock: newClock(), b: newRedisBackend(client, 2*time.Second), client: client, prefix: prefix}
	st := e.newStore(t, nil)
	ctx := context.Background()
	sess, _ := login(t, st, testRecord("alice"))
	h := handleOf(sess.ID)
	rec, err := st.Lookup(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	idx := st.indexes(rec)
	if len(idx) != 2 {
		t.Fatalf("%d indexes, want 2 (IdP session, subject)", len(idx))
	}
	until := strconv.FormatInt(rec.ExpiresAt.Add(time.Minute).Unix(), 10)
	for _, x := range idx {
		if typ, _ := client.Type(ctx, x.key).Result(); typ != "hash" {
			t.Errorf("%s is a %s, want a hash", x.key, typ)
		}
		if enc, _ := client.ObjectEncoding(ctx, x.key).Result(); enc != "listpack" && enc != "ziplist" {
			t.Errorf("%s encoding %s, want listpack", x.key, enc)
		}
		if f := x.field(h); len(f) != 25 {
			t.Errorf("field of %d bytes, want 25 (8 of lookup, 17 of handle)", len(f))
		}
		if v, _ := client.HGet(ctx, x.key, x.field(h)).Result(); v != until {
			t.Errorf("%s: entry %q, want %s", x.key, v, until)
		}
		if d, _ := client.PTTL(ctx, x.key).Result(); d <= 12*time.Hour || d > 12*time.Hour+time.Minute {
			t.Errorf("%s TTL %v, want AbsoluteTimeout+1m", x.key, d)
		}
		if n, _ := client.Exists(ctx, x.legacy).Result(); n != 0 {
			t.Errorf("legacy set %s written", x.legacy)
		}
	}
	sub := idx[1]
	// Another lookup in the same bucket, with a stale entry and a live one.
	other := index{key: sub.key, lookup: strings.Repeat("A", lookupLen), prior: strings.Repeat("A", priorLookupLen)}
	stale, live := handleOf("stale"), handleOf("live")
	past := e.clock.Now().Add(-time.Second)
	if err := e.b.addToIndexes(ctx, []index{other}, stale, past, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.b.addToIndexes(ctx, []index{other}, live, e.clock.Now().Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.b.members(ctx, sub); len(m) != 1 || m[0] != h {
		t.Errorf("members of alice = %v, want her session only", m)
	}
	if err := e.b.pruneIndexes(ctx, []index{other}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.b.members(ctx, other); len(m) != 1 || m[0] != live {
		t.Errorf("after pruning: %v, want the live entry only", m)
	}
	if m, _ := e.b.members(ctx, sub); len(m) != 1 || m[0] != h {
		t.Errorf("pruning dropped a live session's entry: %v", m)
	}
	if n, err := st.RevokeSubject(ctx, testIssuer, "sub-alice"); err != nil || n != 1 {
		t.Fatalf("RevokeSubject = %d, %v", n, err)
	}
	if ok, _ := client.HExists(ctx, sub.key, sub.field(h)).Result(); ok {
		t.Error("revoked session's entry left in the subject index")
	}
	if m, _ := e.b.members(ctx, other); len(m) != 1 {
		t.Errorf("revoking alice touched another lookup of her bucket: %v", m)
	}
}

// Sessions indexed in format 2 (text fields: a 16-character lookup hash + the handle), as an
// instance of an earlier version left them, are still listed and revoked, and their entries
// removed.
func TestIndexFormat2Entries(t *testing.T) {
	client, prefix := redisForTest(t)
	e := &env{clock: newClock(), b: newRedisBackend(client, 2*time.Second), client: client, prefix: prefix}
	st := e.newStore(t, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		revoke func(rec *Record) (int, error)
		index  func(rec *Record) index
	}{
		{name: "IdP session",
			revoke: func(rec *Record) (int, error) { return st.RevokeIdPSession(ctx, rec.Issuer, rec.IdPSessionID) },
			index:  func(rec *Record) index { return st.sidIndex(rec.Issuer, rec.IdPSessionID) }},
		{name: "subject",
			revoke: func(rec *Record) (int, error) { return st.RevokeSubject(ctx, rec.Issuer, rec.Subject) },
			index:  func(rec *Record) index { return st.subIndex(rec.Issuer, rec.Subject) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord("carol" + strconv.Itoa(i))
			sess, c := login(t, st, rec)
			h := handleOf(sess.ID)
			for _, x := range st.indexes(rec) { // rewrite the entries as format 2 wrote them
				v, err := client.HGet(ctx, x.key, x.field(h)).Result()
				if err != nil {
					t.Fatal(err)
				}
				if err := client.HDel(ctx, x.key, x.field(h)).Err(); err != nil {
					t.Fatal(err)
				}
				if err := client.HSet(ctx, x.key, x.prior+h, v).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if recs, err := st.ListSubject(ctx, rec.Issuer, rec.Subject); err != nil || len(recs) != 1 || recs[0].Handle != h {
				t.Fatalf("ListSubject = %d records, %v; want the format-2 session", len(recs), err)
			}
			if n, err := tt.revoke(rec); err != nil || n != 1 {
				t.Fatalf("revoked %d, %v; want the format-2 session", n, err)
			}
			mustGone(t, st, c)
			x := tt.index(rec)
			if ok, _ := client.HExists(ctx, x.key, x.prior+h).Result(); ok {
				t.Error("format-2 entry left after revocation")
			}
		})
	}
}

// A handle packs into 17 bytes and back exactly; a field of another lookup, of the wrong
// length or with bits a packing never sets names no session.
func TestIndexFields(t *testing.T) {
	for i := range 2000 {
		h := handleOf(strconv.Itoa(i))
		p := packHandle(h)
		if got, ok := unpackHandle(p); len(p) != packedHandleLen || !ok || got != h {
			t.Fatalf("%s packs to %d bytes and back to %q, %v", h, len(p), got, ok)
		}
	}
	x := index{lookup: "LLLLLLLL", prior: strings.Repeat("P", priorLookupLen)}
	h := handleOf("x")
	p := packHandle(h)
	tests := []struct {
		name, field string
		want        string // "": names no session
	}{
		{name: "format 3", field: x.field(h), want: h},
		{name: "format 2", field: x.prior + h, want: h},
		{name: "another lookup", field: "MMMMMMMM" + p},
		{name: "another lookup, format 2", field: strings.Repeat("Q", priorLookupLen) + h},
		{name: "short", field: x.lookup + p[:packedHandleLen-1]},
		{name: "long", field: x.field(h) + "x"},
		{name: "padding bits set", field: x.lookup + p[:packedHandleLen-1] + string(p[packedHandleLen-1]|1)},
		{name: "format 2, not base64url", field: x.prior + strings.Repeat("*", handleLen)},
		{name: "format 2, short", field: x.prior + h[:handleLen-1]},
		{name: "lookup alone", field: x.lookup},
		{name: "empty", field: ""},
	}
	for _, tt := range tests {
		got, ok := x.handleIn(tt.field)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: handleIn = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

// The memo of verified cookie values: a value seen before skips the MAC check, but only for
// the same name, within the value's max age, and bounded in size.
func TestCookieMemo(t *testing.T) {
	clock := newClock()
	st, err := NewMemory(Options{Secure: true, Secrets: [][]byte{secretA()}, Now: clock.Now, CacheSize: 3,
		AbsoluteTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Now()
	st.memo.now = func() time.Time { return wall }
	sess, c := login(t, st, testRecord("alice"))
	get := func(name, value string) (string, bool) {
		id, _, ok := st.verifiedCookie(name, value)
		return id, ok
	}
	if id, ok := get(c.Name, c.Value); !ok || id != sess.ID || st.memo.len() != 1 {
		t.Fatalf("first use: ok %v, memo %d", ok, st.memo.len())
	}
	if e := st.memo.get(c.Name, c.Value); e == nil || e.id != sess.ID || string(e.handle[:]) != handleOf(sess.ID) {
		t.Fatal("verified value not remembered with its id and handle")
	}
	if _, ok := get("other", c.Value); ok {
		t.Error("a value remembered for one cookie name was accepted for another")
	}
	if st.memo.get(c.Name, c.Value[:len(c.Value)-1]+"A") != nil || st.memo.get(c.Name, "") != nil {
		t.Error("memo matched a different value")
	}
	wall = wall.Add(time.Duration(st.keys.cookieMaxAge)*time.Second + time.Second)
	if st.memo.get(c.Name, c.Value) != nil {
		t.Error("memo served a value past its max age")
	}
	wall = time.Now()
	for range 5 {
		_, c := login(t, st, testRecord("bob"))
		if _, ok := get(c.Name, c.Value); !ok {
			t.Fatal("fresh cookie refused")
		}
	}
	if n := st.memo.len(); n > 3 {
		t.Errorf("memo holds %d entries, bound 3", n)
	}
	// A revoked session is refused although its cookie is remembered.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	if err := st.Revoke(context.Background(), handleOf(sess.ID)); err != nil {
		t.Fatal(err)
	}
	if s, err := st.Get(r, st.CookieName()); err != nil || !s.IsNew {
		t.Errorf("revoked session served through the memo: %v", err)
	}
}
