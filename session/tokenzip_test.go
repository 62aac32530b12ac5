package session

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

// The JSON parts of the tokens the development IdP issued in a real login (devidp, RS256).
const (
	exampleIDHeader  = `{"alg":"RS256","kid":"ASo6jfEgLxABoRca","typ":"JWT"}`
	exampleIDPayload = `{"amr":["pwd"],"at_hash":"oYW3lwfFVqz6hQDXNUE7uQ","aud":["authgate"],"auth_time":1795665701,` +
		`"azp":"authgate","c_hash":"PSHQ3mvaTSdL6qDS-_WtrA","client_id":"authgate","email":"alice@example.com",` +
		`"email_verified":true,"exp":1795669301,"groups":["admins"],"iat":1795665701,"iss":"http://127.0.0.1:39747",` +
		`"name":"Alice Example","nonce":"5c398bb91752e391942d30c7","preferred_username":"alice",` +
		`"roles":["super_admin"],"sid":"QWx6FEqS7J-gXPB_qUDyGQ","sub":"user-alice"}`
	exampleATHeader = `{"alg":"A256GCMKW","enc":"A256GCM","iv":"0V7HYLsYMREIGP8K","kid":"devidp","tag":"xELnMLLOEZq1occlWUleDg"}`
)

// randomPart is n pseudo-random bytes (signatures, keys, ciphertexts) in base64url, the same
// for the same seed.
func randomPart(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// exampleRecord is the session of the devidp login above: its record fields as the gateway
// fills them, an RS256 ID token, the JWE access token and the opaque refresh token.
func exampleRecord() *Record {
	at := time.Date(2026, 11, 26, 20, 41, 41, 0, time.UTC)
	return &Record{
		Handle: "h", UserID: "0b8e5f2c-6f0a-4c55-9f43-3d1c2a7e9b10", Subject: "user-alice",
		Issuer: "http://127.0.0.1:39747", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Roles: []string{"super_admin"}, Groups: []string{"admins"},
		IdPSessionID: "QWx6FEqS7J-gXPB_qUDyGQ", Provider: "default",
		IDToken:      b64s(exampleIDHeader) + "." + b64s(exampleIDPayload) + "." + randomPart(1, 256),
		AccessToken:  b64s(exampleATHeader) + "." + randomPart(2, 32) + "." + randomPart(3, 12) + "." + randomPart(4, 33) + "." + randomPart(5, 16),
		RefreshToken: randomPart(6, 32), TokenExpiry: at.Add(5 * time.Minute),
		CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(12 * time.Hour), IP: "192.0.2.10",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	}
}

// encodeRecordV2Only is encodeRecord with format-2 tokens, as it wrote before format 3.
func (k keys) encodeRecordV2Only(t testing.TB, rec *Record, tag uint32) []byte {
	t.Helper()
	sealed, err := k.sealer.seal(tokensV2Plain(rec), tokenAD(rec.Handle))
	if err != nil {
		t.Fatal(err)
	}
	return appendRecordV2(nil, rec, tag, sealed, false)
}

func TestTokensV3RoundTrip(t *testing.T) {
	k, err := deriveKeys([][]byte{secretA()}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*Record)) *Record { r := exampleRecord(); f(r); return r }
	tests := []struct {
		name   string
		rec    *Record
		zipped bool // format 3 expected
	}{
		{name: "devidp login", rec: exampleRecord(), zipped: true},
		{name: "fields not in the tokens", zipped: true, rec: with(func(r *Record) {
			r.Subject, r.Email, r.Name, r.IdPSessionID, r.Issuer = "other", "bob@example.org", "Bob", "", "https://elsewhere/"
			r.Roles, r.Groups = nil, []string{"x", "y", "z"}
		})},
		{name: "no record fields at all", zipped: true, rec: with(func(r *Record) {
			r.UserID, r.Subject, r.Email, r.Name, r.IdPSessionID, r.Issuer, r.Roles, r.Groups = "", "", "", "", "", "", nil, nil
		})},
		{name: "unicode name in record and token", zipped: true, rec: with(func(r *Record) {
			r.Name = "Zoë 名前 Ünïcødé 🙂"
			r.IDToken = b64s(exampleIDHeader) + "." + b64s(strings.Replace(exampleIDPayload, "Alice Example", r.Name, 1)) + "." + randomPart(7, 256)
		})},
		{name: "opaque tokens only", rec: with(func(r *Record) {
			r.IDToken, r.AccessToken, r.RefreshToken = randomPart(8, 48), randomPart(9, 32), randomPart(10, 32)
		})},
		{name: "UUID tokens", rec: with(func(r *Record) {
			r.IDToken, r.AccessToken, r.RefreshToken = "", "5f0c8a2e-7b1d-4c3a-9e6f-000000000001", "c81d3e4f-0a9b-4e2d-8c7b-6a5f4e3d2c1b"
		})},
		{name: "refresh token only", rec: with(func(r *Record) { r.IDToken, r.AccessToken = "", "" })},
		{name: "ID token only, empty others", zipped: true, rec: with(func(r *Record) { r.AccessToken, r.RefreshToken = "", "" })},
		{name: "many groups", zipped: true, rec: with(func(r *Record) {
			for i := range 600 {
				r.Groups = append(r.Groups, randomPart(uint64(i), 12))
			}
		})}, {name: "compressible tokens past the bound", rec: with(func(r *Record) {
			var p strings.Builder
			p.WriteString(`{"groups":["g-0"`)
			for i := 1; p.Len() <= maxTokensPlain; i++ {
				fmt.Fprintf(&p, `,"g-%d"`, i)
			}
			r.IDToken = b64s(exampleIDHeader) + "." + b64s(p.String()+`]}`) + "." + randomPart(11, 256)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := k.encodeRecord(tt.rec, 7)
			if err != nil {
				t.Fatal(err)
			}
			if got := raw[v2Header]&flagZipped != 0; got != tt.zipped {
				t.Errorf("format 3 = %v, want %v", got, tt.zipped)
			}
			if v2 := k.encodeRecordV2Only(t, tt.rec, 7); len(raw) > len(v2) {
				t.Errorf("record is %d bytes, %d with format-2 tokens: compression made it grow", len(raw), len(v2))
			}
			got, err := k.decodeRecord("h", raw, true)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, tt.rec)
			}
		})
	}
}

// On the devidp login, format 3 saves at least 150 bytes of the record (the ID token's claims
// are mostly the record's own fields and well-known names).
func TestTokensV3Smaller(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	rec := exampleRecord()
	v3, err := k.encodeRecord(rec, 1)
	if err != nil {
		t.Fatal(err)
	}
	v2 := k.encodeRecordV2Only(t, rec, 1)
	t.Logf("record value: %d bytes with format-2 tokens, %d with format 3 (%d saved); token plaintext %d",
		len(v2), len(v3), len(v2)-len(v3), len(tokensV2Plain(rec)))
	if v3[v2Header]&flagZipped == 0 || len(v2)-len(v3) < 150 {
		t.Errorf("format 3 saves %d bytes (flag %v), want >= 150", len(v2)-len(v3), v3[v2Header]&flagZipped != 0)
	}
}

// The sealed tokens of format 3 open only next to the record fields they were compressed
// against: changing one in the backend makes the tokens corrupt, not different.
func TestTokensV3BoundToRecordFields(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	rec := exampleRecord()
	sealed, zipped, err := k.sealTokens(rec)
	if err != nil || !zipped {
		t.Fatalf("sealTokens: zipped %v, %v", zipped, err)
	}
	for _, change := range []func(*Record){
		func(r *Record) { r.Email = "mallory@example.com" },
		func(r *Record) { r.Name = "Alice Examplf" },
		func(r *Record) { r.Roles = append(r.Roles, "x") },
		func(r *Record) { r.Groups = nil },
		func(r *Record) { r.Issuer += "/" },
	} {
		r := exampleRecord()
		change(r)
		raw := appendRecordV2(nil, r, 1, sealed, true)
		if _, err := k.decodeRecord("h", raw, true); !errors.Is(err, errCorrupt) {
			t.Errorf("tokens opened next to changed fields: %v", err)
		}
	}
	if got, err := k.decodeRecord("h", appendRecordV2(nil, rec, 1, sealed, true), true); err != nil || got.IDToken != rec.IDToken {
		t.Fatalf("unchanged record: %v", err)
	}
}

// textsOfLen is three valid texts of n bytes in all (n >= 5): a raw text of zeros, two empty.
func textsOfLen(n int) []byte {
	l := n - 2 - 1
	for uvarintLen(uint64(l)<<1)+l+2 > n {
		l--
	}
	b := binary.AppendUvarint(nil, uint64(l)<<1)
	return append(append(b, make([]byte, l)...), 0, 0)
}

// Decoding stops at maxTokensPlain: a plaintext of exactly that much decodes, one byte more
// is corrupt (with texts that would parse), and a block that declares more is refused before
// anything is allocated for it.
func TestTokensV3Bound(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	rec := exampleRecord()
	for _, tt := range []struct {
		name string
		n    int
		ok   bool
	}{
		{name: "at the bound", n: maxTokensPlain, ok: true},
		{name: "one byte past", n: maxTokensPlain + 1},
	} {
		texts := textsOfLen(tt.n)
		if len(texts) != tt.n {
			t.Fatalf("%s: texts of %d bytes, want %d", tt.name, len(texts), tt.n)
		}
		got, err := k.decodeRecord("h", sealedV3Record(t, k, rec, zipForTest(t, rec, texts)), true)
		if tt.ok && (err != nil || len(got.IDToken) != tt.n-uvarintLen(uint64(len(got.IDToken))<<1)-2) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err %v, want errCorrupt", tt.name, err)
		}
	}
	// A block declaring 4 GiB - 1, with a few bytes of data: refused on its header.
	huge := sealedV3Record(t, k, rec, append(binary.AppendUvarint([]byte{tokensV3}, 1<<32-1), 0x08, 0, 0, 0))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := k.decodeRecord("h", huge, true)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errCorrupt) {
		t.Errorf("block declaring 4 GiB: err %v, want errCorrupt", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("block declaring 4 GiB: %d bytes allocated before refusing it", n)
	}
}

// zipForTest compresses texts (format-2 texts, without the version byte) against rec's
// dictionary, whatever their size, into a format-3 plaintext.
func zipForTest(t testing.TB, rec *Record, texts []byte) []byte {
	t.Helper()
	d := s2.MakeDictManual(zipDictRecord([]byte(zipDictStatic), rec), zipDictRepeat)
	if d == nil {
		t.Fatal("invalid dictionary")
	}
	return append([]byte{tokensV3}, d.Encode(nil, texts)...)
}

// sealedV3Record is rec with plain sealed as format-3 tokens, whatever plain holds.
func sealedV3Record(t testing.TB, k keys, rec *Record, plain []byte) []byte {
	t.Helper()
	sealed, err := k.sealer.seal(plain, tokenADv3(nil, rec.Handle, zipDictRecord(nil, rec)))
	if err != nil {
		t.Fatal(err)
	}
	return appendRecordV2(nil, rec, 0, sealed, true)
}

// FuzzDecodeTokensV3 feeds arbitrary format-3 plaintexts, sealed properly, to decodeRecord:
// the S2 decoding and text parsing behind the seal. Never a panic, never more than maxTokensPlain,
// and what decodes re-encodes to the same tokens.
func FuzzDecodeTokensV3(f *testing.F) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	rec := exampleRecord()
	f.Add(zipForTest(f, rec, tokensV2Plain(rec)[1:]))
	f.Add(zipForTest(f, rec, []byte{0, 0, 0}))
	f.Add(zipForTest(f, rec, make([]byte, 70_000)))
	f.Add([]byte{tokensV3, 3, 2 << 2, 0, 0, 0})           // a literal: three empty texts
	f.Add([]byte{tokensV3, 4, 3<<2 | 2, 0xff, 0xff})      // a copy from before the dictionary
	f.Add([]byte{tokensV3, 0xff, 0xff, 0xff, 0xff, 0x0f}) // declares 4 GiB - 1
	f.Add([]byte{tokensV3})
	f.Fuzz(func(t *testing.T, plain []byte) {
		got, err := k.decodeRecord("h", sealedV3Record(t, k, rec, plain), true)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("err %v, want errCorrupt", err)
			}
			return
		}
		if n := len(got.IDToken) + len(got.AccessToken) + len(got.RefreshToken); n > 2*maxTokensPlain {
			t.Fatalf("tokens of %d bytes from a bounded plaintext", n)
		}
		re, err := k.encodeRecord(got, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, err := k.decodeRecord("h", re, true)
		if err != nil || back.IDToken != got.IDToken || back.AccessToken != got.AccessToken || back.RefreshToken != got.RefreshToken {
			t.Fatalf("re-encoded tokens decode differently: %v", err)
		}
	})
}
