package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecordBinaryRoundTrip(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	full := testRecord("alice")
	full.Handle, full.TokenExpiry, full.CreatedAt, full.LastSeenAt, full.ExpiresAt = "h", at, at, at.Add(time.Second), at.Add(time.Hour)
	tests := []struct {
		name string
		rec  *Record
	}{
		{name: "full", rec: full},
		{name: "no tokens, roles or groups", rec: &Record{Handle: "h", UserID: "u", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}},
		{name: "only groups", rec: &Record{Handle: "h", Groups: []string{"g1", "g2"}, CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "only roles, unicode", rec: &Record{Handle: "h", Roles: []string{"ä", ""}, Name: "名前", RefreshToken: "r", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "far times", rec: &Record{Handle: "h", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), LastSeenAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: at}},
	}
	k, err := deriveKeys([][]byte{secretA()}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := k.encodeRecord(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if raw[0] != recordV1 {
				t.Fatalf("first byte %#x, want the version byte", raw[0])
			}
			got, err := k.decodeRecord("h", raw, true)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, tt.rec)
			}
			noTok, err := k.decodeRecord("h", raw, false)
			if err != nil || noTok.AccessToken != "" || noTok.RefreshToken != "" || noTok.IDToken != "" || noTok.UserID != tt.rec.UserID {
				t.Errorf("without tokens: %+v, %v", noTok, err)
			}
		})
	}
}

func TestRecordRejectsCorrupt(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := testRecord("alice")
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt = "h", at, at, at.Add(time.Hour)
	good, _ := k.encodeRecord(rec)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 1 // inside the sealed tokens
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "empty", raw: nil},
		{name: "unknown version", raw: append([]byte{0xA2}, good[1:]...)},
		{name: "truncated", raw: good[:len(good)-1]},
		{name: "trailing byte", raw: append(bytes.Clone(good), 0)},
		{name: "unknown flag", raw: append([]byte{recordV1, 0x80}, good[2:]...)},
		{name: "huge role count", raw: []byte{recordV1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{name: "tampered tokens", raw: flipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.decodeRecord("h", tt.raw, true); !errors.Is(err, errCorrupt) {
				t.Errorf("err = %v, want errCorrupt", err)
			}
		})
	}
	if _, err := k.decodeRecord("other-handle", good, true); err == nil {
		t.Error("tokens opened under another handle")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := testRecord("alice")
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt = "h", at, at, at.Add(time.Hour)
	good, _ := k.encodeRecord(rec)
	f.Add(good)
	f.Add([]byte{recordV1})
	f.Add([]byte(`{"exp":"2030-01-01T00:00:00Z","ls":"2030-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := k.decodeRecord("h", raw, true)
		if err == nil && (got.ExpiresAt.IsZero() || got.LastSeenAt.IsZero()) {
			t.Fatalf("decoded a record without ExpiresAt/LastSeenAt")
		}
		if err == nil && raw[0] == recordV1 {
			again, err := k.decodeRecord("h", raw, false)
			if err != nil || again.UserID != got.UserID {
				t.Fatalf("decode without tokens disagrees: %v", err)
			}
		}
	})
}

// forgeCookie builds a securecookie-format value by hand, signed with secret's cookie key.
func forgeCookie(t *testing.T, secret []byte, name string, date int64, payload string) string {
	t.Helper()
	key, err := expand(secret, infoCookieMAC)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("%d|%s", date, base64.URLEncoding.EncodeToString([]byte(payload)))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name + "|" + body))
	return base64.URLEncoding.EncodeToString(append([]byte(body+"|"), m.Sum(nil)...))
}

func TestDecodeCookie(t *testing.T) {
	k, err := deriveKeys([][]byte{secretB(), secretA()}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	const name = "__Host-authgate"
	id := mustID(t)
	now := time.Now().Unix()
	signed, err := k.encodeCookie(name, id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value string
		want  bool
	}{
		{name: "encodeCookie", value: signed, want: true},
		{name: "hand-made, current secret", value: forgeCookie(t, secretB(), name, now, id), want: true},
		{name: "older secret still listed", value: forgeCookie(t, secretA(), name, now, id), want: true},
		{name: "unknown secret", value: forgeCookie(t, bytes.Repeat([]byte("c"), 32), name, now, id)},
		{name: "other cookie name", value: forgeCookie(t, secretB(), "other", now, id)},
		{name: "older than max age", value: forgeCookie(t, secretB(), name, now-3601, id)},
		{name: "just within max age", value: forgeCookie(t, secretB(), name, now-3590, id), want: true},
		{name: "payload not an id", value: forgeCookie(t, secretB(), name, now, "short")},
		{name: "payload id with a bad byte", value: forgeCookie(t, secretB(), name, now, id[:42]+"*")},
		{name: "negative date", value: forgeCookie(t, secretB(), name, -5, id)},
		{name: "too long", value: signed + strings.Repeat("A", maxCookieValue)},
		{name: "truncated", value: signed[:len(signed)-4]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := k.decodeCookie(name, tt.value)
			if ok != tt.want || (ok && got != id) {
				t.Errorf("decodeCookie = %v, %v; want %v", got == id, ok, tt.want)
			}
		})
	}
}
