package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// FuzzDecodeCookie feeds arbitrary cookie values to the decoding path (and to Get). It must
// never panic, and only ids the store signed may ever come out of it.
func FuzzDecodeCookie(f *testing.F) {
	clock := newClock()
	st, err := NewMemory(Options{Secure: true, Secrets: [][]byte{secretA(), secretB()}, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	// Ids are fixed, not random: fuzz workers are separate processes that rebuild this setup,
	// and a seed made by one must name an issued id in all of them.
	issued := map[string]bool{}
	name := st.CookieName()
	for i := range 3 {
		id := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{byte(i + 1)}, idBytes))
		issued[id] = true
		rec := testRecord("fuzz")
		rec.Handle, rec.CreatedAt, rec.LastSeenAt = handleOf(id), clock.Now(), clock.Now()
		rec.ExpiresAt = rec.CreatedAt.Add(time.Hour)
		if err := st.write(context.Background(), rec, setNX); err != nil {
			f.Fatal(err)
		}
		for _, codec := range st.keys.codecs { // current and rotated-out secret
			v, err := codec.Encode(name, []byte(id))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(v)
			f.Add(v[:len(v)/2])
			f.Add(strings.ToUpper(v))
			f.Add(v + "=")
		}
	}
	for _, seed := range []string{"", "=", "|||", "MTIzfA==", `"abc"`, "abc\xff", strings.Repeat("A", 5000), "*", "\r\nFLUSHALL\r\n"} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, value string) {
		if id, ok := st.keys.decodeCookie(name, value); ok && !issued[id] {
			t.Fatalf("decodeCookie(%q) accepted an id Save never issued", value)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", name+"="+value)
		sess, err := st.Get(r, name)
		if err != nil || sess == nil {
			t.Fatalf("Get: sess=%v err=%v", sess, err)
		}
		if !sess.IsNew && !issued[sess.ID] {
			t.Fatalf("Get(%q) returned a session Save never issued", value)
		}
	})
}

// FuzzDecodeCookieMatchesSecurecookie checks the allocation-free decoder against
// gorilla/securecookie itself: it never accepts what securecookie refuses, yields the same id,
// and refuses only values with CR or LF that securecookie's base64 decoding would skip.
func FuzzDecodeCookieMatchesSecurecookie(f *testing.F) {
	k, err := deriveKeys([][]byte{secretA(), secretB()}, 3600)
	if err != nil {
		f.Fatal(err)
	}
	const name = "__Host-authgate"
	id := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, idBytes))
	for _, c := range k.codecs {
		v, err := c.Encode(name, []byte(id))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(v[:len(v)-2])
	}
	f.Add("MTIzfA==")
	f.Fuzz(func(t *testing.T, value string) {
		got, ok := k.decodeCookie(name, value)
		var raw []byte
		wantOK := securecookie.DecodeMulti(name, value, &raw, k.codecs...) == nil && validID(string(raw))
		if ok && (!wantOK || got != string(raw)) {
			t.Fatalf("decodeCookie(%q) accepted %q; securecookie says %v", value, got, wantOK)
		}
		// Stricter is allowed in one case only: encoding/base64 (which securecookie uses)
		// skips CR and LF inside the value; cookies never carry them, the decoder refuses them.
		if !ok && wantOK && !strings.ContainsAny(value, "\r\n") {
			t.Fatalf("decodeCookie(%q) refused a value securecookie accepts", value)
		}
	})
}

// FuzzIndexField: whatever a bucket field holds (Redis is shared), handleIn names a valid
// handle or nothing, and only for a field this index writes (format 3) or wrote (format 2).
func FuzzIndexField(f *testing.F) {
	x := index{lookup: "LLLLLLLL", prior: strings.Repeat("P", priorLookupLen)}
	h := handleOf("seed")
	f.Add(x.field(h))
	f.Add(x.prior + h)
	f.Add(x.lookup + packHandle(h)[:packedHandleLen-1] + "\x0f")
	f.Fuzz(func(t *testing.T, field string) {
		got, ok := x.handleIn(field)
		if !ok {
			return
		}
		if !validHandle(got) || (field != x.field(got) && field != x.prior+got) {
			t.Fatalf("handleIn(%q) = %q, which this index does not write as that field", field, got)
		}
	})
}
