package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jwtLike is a token shaped like the bench IdP's: base64url parts joined by dots.
func jwtLike(sizes ...int) string {
	parts := make([]string, len(sizes))
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		parts[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return strings.Join(parts, ".")
}

func TestRecordBinaryRoundTrip(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC) // whole milliseconds: format 2 keeps those
	full := testRecord("alice")
	full.Handle, full.TokenExpiry, full.CreatedAt, full.LastSeenAt, full.ExpiresAt = "h", at.Add(-time.Hour), at, at.Add(time.Second), at.Add(time.Hour)
	jwt := testRecord("bob")
	jwt.Handle, jwt.CreatedAt, jwt.LastSeenAt, jwt.ExpiresAt = "h", at, at, at.Add(time.Hour)
	jwt.IDToken, jwt.AccessToken, jwt.RefreshToken = jwtLike(52, 481, 256), jwtLike(105, 32, 12, 33, 16), jwtLike(32)
	tests := []struct {
		name string
		rec  *Record
	}{
		{name: "full", rec: full},
		{name: "JWT-shaped tokens", rec: jwt},
		{name: "UUIDs and base64url identifiers", rec: &Record{Handle: "h", UserID: "5f0c8a2e-7b1d-4c3a-9e6f-000000000001",
			Subject: "5F0C8A2E-7B1D-4C3A-9E6F-000000000001", IdPSessionID: "V1StGXR8_Z5jdHi6B-myT", Email: "0123456789ab-cdef-0123-4567-89abcdef0123",
			Name: "5f0c8a2e-7b1d-4c3a-9e6f-00000000000g", Roles: []string{"5f0c8a2e-7b1d-4c3a-9e6f-000000000002", "abcd"}, Groups: []string{"YWJj.ZGVm"},
			IDToken: "5f0c8a2e-7b1d-4c3a-9e6f-000000000003", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "tokens not base64url", rec: &Record{Handle: "h", IDToken: "a.b=.c", AccessToken: "x.YQ", RefreshToken: "YR", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "dots only, empty parts, many parts", rec: &Record{Handle: "h", IDToken: "..", AccessToken: "a.b.c.d.e.f.g.h.i", RefreshToken: "YWJj..", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "no tokens, roles or groups", rec: &Record{Handle: "h", UserID: "u", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}},
		{name: "only groups", rec: &Record{Handle: "h", Groups: []string{"g1", "g2"}, CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "only roles, unicode", rec: &Record{Handle: "h", Roles: []string{"ä", ""}, Name: "名前", RefreshToken: "r", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}},
		{name: "far times", rec: &Record{Handle: "h", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1_000_000, time.UTC), LastSeenAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: at}},
	}
	k, err := deriveKeys([][]byte{secretA()}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v1, err := k.encodeRecordV1(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := k.encodeRecord(tt.rec, 7)
			if err != nil {
				t.Fatal(err)
			}
			if v2[0] != recordV2 || v1[0] != recordV1 || tagOf(v2) != 7 {
				t.Fatalf("first bytes %#x %#x, tag %d; want the version bytes and 7", v2[0], v1[0], tagOf(v2))
			}
			if tt.name == "JWT-shaped tokens" && len(v2) >= len(v1)-300 {
				t.Errorf("format 2 is %d bytes, format 1 %d: JWT parts not stored in binary", len(v2), len(v1))
			}
			for _, raw := range [][]byte{v1, v2} {
				got, err := k.decodeRecord("h", raw, true)
				if err != nil {
					t.Fatalf("format %#x: %v", raw[0], err)
				}
				if !reflect.DeepEqual(got, tt.rec) {
					t.Errorf("format %#x decoded\n %+v\nwant\n %+v", raw[0], got, tt.rec)
				}
				noTok, err := k.decodeRecord("h", raw, false)
				if err != nil || noTok.AccessToken != "" || noTok.RefreshToken != "" || noTok.IDToken != "" || noTok.UserID != tt.rec.UserID {
					t.Errorf("format %#x without tokens: %+v, %v", raw[0], noTok, err)
				}
			}
		})
	}
}

func TestStoredTimeFloorsToMillisecond(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 6_999_999, time.FixedZone("x", 3600))
	before := time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	rec := &Record{Handle: "h", CreatedAt: at, LastSeenAt: before, ExpiresAt: at, TokenExpiry: at.Add(-time.Nanosecond)}
	raw, _ := k.encodeRecord(rec, 0)
	got, err := k.decodeRecord("h", raw, true)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 2, 2, 4, 5, 6_000_000, time.UTC)
	if !got.CreatedAt.Equal(want) || !got.CreatedAt.Equal(storedTime(at)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
	if !got.LastSeenAt.Equal(before.Add(-999_999)) || !got.LastSeenAt.Equal(storedTime(before)) {
		t.Errorf("LastSeenAt = %v, want floored", got.LastSeenAt)
	}
	if !got.TokenExpiry.Equal(storedTime(rec.TokenExpiry)) || !storedTime(time.Time{}).IsZero() {
		t.Errorf("TokenExpiry = %v", got.TokenExpiry)
	}
}

func TestRecordRejectsCorrupt(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := testRecord("alice")
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt = "h", at, at, at.Add(time.Hour)
	good1, _ := k.encodeRecordV1(rec)
	good2, _ := k.encodeRecord(rec, 1)
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	// The sealed length follows flags, CreatedAt and ExpiresAt (no TokenExpiry here).
	sealedAt := v2Header + 1 + len(binary.AppendVarint(nil, at.UnixMilli())) + len(binary.AppendVarint(nil, time.Hour.Milliseconds()))
	// A v2 record whose tokens seal a plaintext that is not a valid token list.
	badPlain := func(plain []byte) []byte {
		sealed, err := k.sealer.seal(plain, tokenAD("h"))
		if err != nil {
			t.Fatal(err)
		}
		return appendRecordV2(nil, &Record{CreatedAt: at, LastSeenAt: at, ExpiresAt: at}, 0, sealed, false)
	}
	// Format 3: the devidp login, and plaintexts sealed as format 3 next to its fields.
	ex := exampleRecord()
	good3, _ := k.encodeRecord(ex, 1)
	if good3[v2Header]&flagZipped == 0 {
		t.Fatal("the devidp login is not stored in format 3")
	}
	zipped := zipForTest(t, ex, tokensV2Plain(ex)[1:])
	badZip := func(plain []byte) []byte { return sealedV3Record(t, k, ex, plain) }
	setFlags := func(raw []byte, set, unset byte) []byte {
		b := bytes.Clone(raw)
		b[v2Header] = b[v2Header]&^unset | set
		return b
	}
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "empty", raw: nil},
		{name: "unknown version", raw: append([]byte{0xA3}, good2[1:]...)},
		{name: "v1 truncated", raw: good1[:len(good1)-1]},
		{name: "v1 trailing byte", raw: append(bytes.Clone(good1), 0)},
		{name: "v1 unknown flag", raw: append([]byte{recordV1, 0x80}, good1[2:]...)},
		{name: "v1 huge role count", raw: []byte{recordV1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{name: "v1 tampered tokens", raw: flip(good1, len(good1)-3)},
		{name: "v2 header only", raw: good2[:v2Header]},
		{name: "v2 truncated", raw: good2[:len(good2)-1]},
		{name: "v2 trailing byte", raw: append(bytes.Clone(good2), 0)},
		{name: "v2 unknown flag", raw: func() []byte { b := bytes.Clone(good2); b[v2Header] |= 0x80; return b }()},
		{name: "v2 sealed flag without tokens", raw: func() []byte {
			b := appendRecordV2(nil, &Record{CreatedAt: at, LastSeenAt: at, ExpiresAt: at}, 0, nil, false)
			b[v2Header] |= flagSealed
			return b
		}()},
		{name: "v2 tampered tokens", raw: flip(good2, v2Header+12)},
		{name: "v2 tampered sealed length", raw: flip(good2, sealedAt)},
		{name: "v2 bad varint", raw: append(append(bytes.Clone(good2[:v2Header+1]), bytes.Repeat([]byte{0xff}, 11)...), 0)},
		{name: "v2 zero LastSeenAt", raw: appendRecordV2(nil, &Record{CreatedAt: at, ExpiresAt: at}, 0, nil, false)},
		{name: "v2 tokens: wrong version", raw: badPlain([]byte{tokensV1, 0, 0, 0})},
		{name: "v2 tokens: two only", raw: badPlain([]byte{tokensV2, 0, 0})},
		{name: "v2 tokens: trailing", raw: badPlain([]byte{tokensV2, 0, 0, 0, 0})},
		{name: "v2 tokens: UUID cut short", raw: badPlain([]byte{tokensV2, 1, 0, 0})},
		{name: "v2 tokens: too many parts", raw: badPlain([]byte{tokensV2, 2*maxTokenParts + 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{name: "v2 tokens: part too long", raw: badPlain([]byte{tokensV2, 3, 5, 1, 0, 0})},
		{name: "v2 tokens: raw too long", raw: badPlain([]byte{tokensV2, 4, 'a', 0, 0})},
		{name: "v3 flag on format-2 tokens", raw: setFlags(k.encodeRecordV2Only(t, ex, 1), flagZipped, 0)},
		{name: "v3 flag cleared", raw: setFlags(good3, 0, flagZipped)},
		{name: "v3 flag without sealed tokens", raw: setFlags(appendRecordV2(nil, ex, 0, nil, false), flagZipped, 0)},
		{name: "v3 record field changed", raw: func() []byte {
			b := bytes.Clone(good3)
			i := bytes.Index(b, []byte("alice@example.com"))
			b[i] = 'A'
			return b
		}()},
		{name: "v3 tokens: wrong version", raw: badZip(append([]byte{tokensV2}, zipped[1:]...))},
		{name: "v3 tokens: version only", raw: badZip([]byte{tokensV3})},
		{name: "v3 tokens: bad length header", raw: badZip([]byte{tokensV3, 0xff, 0xff, 0xff, 0xff})},
		{name: "v3 tokens: declares 4 GiB", raw: badZip([]byte{tokensV3, 0xff, 0xff, 0xff, 0xff, 0x0f, 2 << 2, 0, 0, 0})},
		{name: "v3 tokens: declares more than it holds", raw: badZip([]byte{tokensV3, 4, 2 << 2, 0, 0, 0})},
		{name: "v3 tokens: holds more than it declares", raw: badZip([]byte{tokensV3, 2, 2 << 2, 0, 0, 0})},
		{name: "v3 tokens: copy from before the dictionary", raw: badZip([]byte{tokensV3, 7, 3<<2 | 2, 0xff, 0xff, 2 << 2, 0, 0, 0})},
		{name: "v3 tokens: copy with offset 0 in copy2", raw: badZip([]byte{tokensV3, 7, 3<<2 | 2, 0, 0, 2 << 2, 0, 0, 0})},
		{name: "v3 tokens: stream truncated", raw: badZip(zipped[:len(zipped)-1])},
		{name: "v3 tokens: trailing garbage", raw: badZip(append(bytes.Clone(zipped), 0))},
		{name: "v3 tokens: two blocks", raw: badZip(append(bytes.Clone(zipped), zipped[1:]...))},
		{name: "v3 tokens: bomb", raw: badZip(zipForTest(t, ex, append([]byte{2 << 1}, make([]byte, 1<<20)...)))},
		{name: "v3 tokens: just past the bound", raw: badZip(zipForTest(t, ex, textsOfLen(maxTokensPlain+1)))},
		{name: "v3 tokens: texts do not parse", raw: badZip(zipForTest(t, ex, []byte{0, 0}))},
		{name: "v3 tokens: texts with trailing byte", raw: badZip(zipForTest(t, ex, append(tokensV2Plain(ex)[1:], 0)))},
		{name: "v3 tokens: part too long", raw: badZip(zipForTest(t, ex, []byte{3, 5, 1, 0, 0}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.decodeRecord("h", tt.raw, true); !errors.Is(err, errCorrupt) {
				t.Errorf("err = %v, want errCorrupt", err)
			}
		})
	}
	for _, good := range [][]byte{good1, good2, k.encodeRecordV2Only(t, ex, 1), good3, badZip(zipped)} {
		if _, err := k.decodeRecord("other-handle", good, true); err == nil {
			t.Errorf("format %#x: tokens opened under another handle", good[0])
		}
	}
}

// FuzzDecodeRecord: decoding never panics, never yields a record without its expiry times,
// agrees with decoding without tokens, and what decodes re-encodes (format 2, tokens in format
// 2 or 3) to a record that decodes to the same. (The sealed tokens resist mutation:
// FuzzDecodeTokensV3 fuzzes what is inside the seal of format 3.)
func FuzzDecodeRecord(f *testing.F) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := testRecord("alice")
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt, rec.TokenExpiry = "h", at, at, at.Add(time.Hour), at.Add(time.Minute)
	good1, _ := k.encodeRecordV1(rec)
	f.Add(good1)
	rec.IDToken, rec.AccessToken = jwtLike(20, 40, 32), jwtLike(10, 3, 2, 1, 0)
	good2, _ := k.encodeRecord(rec, 42)
	f.Add(good2)
	bare, _ := k.encodeRecord(&Record{Handle: "h", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}, 0)
	f.Add(bare)
	ids, _ := k.encodeRecord(&Record{Handle: "h", UserID: "5f0c8a2e-7b1d-4c3a-9e6f-000000000001", Subject: "YWJj",
		Roles: []string{"a.b"}, CreatedAt: at, LastSeenAt: at, ExpiresAt: at}, 0)
	f.Add(ids)
	ex := exampleRecord() // tokens in format 3, and the same in format 2
	zipped, _ := k.encodeRecord(ex, 3)
	f.Add(zipped)
	f.Add(k.encodeRecordV2Only(f, ex, 3))
	f.Add([]byte{recordV1})
	f.Add([]byte{recordV2})
	f.Add([]byte(`{"exp":"2030-01-01T00:00:00Z","ls":"2030-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := k.decodeRecord("h", raw, true)
		if err != nil {
			return
		}
		if got.ExpiresAt.IsZero() || got.LastSeenAt.IsZero() {
			t.Fatalf("decoded a record without ExpiresAt/LastSeenAt")
		}
		again, err := k.decodeRecord("h", raw, false)
		if err != nil || again.UserID != got.UserID || again.AccessToken != "" {
			t.Fatalf("decode without tokens disagrees: %v", err)
		}
		if raw[0] != recordV2 {
			return
		}
		re, err := k.encodeRecord(got, tagOf(raw))
		if err != nil {
			t.Fatal(err)
		}
		back, err := k.decodeRecord("h", re, true)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoded record decodes differently: %v\n%+v\n%+v", err, back, got)
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
