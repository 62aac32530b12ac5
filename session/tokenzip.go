package session

import (
	"encoding/binary"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Token plaintext format 3: tokensV3 | an S2 block (github.com/klauspost/compress/s2: a
// uvarint of the decoded length, then literals and copies) of the format-2 texts (the
// plaintext of format 2 without its first byte), compressed against a dictionary: zipDictStatic,
// then the record's own identity fields (zipDictRecord), first repeat offset zipDictRepeat.
// The record says so with flagZipped, and the associated data of the seal covers the record
// part of the dictionary (tokenADv3), so the tokens open only next to the very fields they
// were compressed against: a change of those clear fields in the backend fails the open
// instead of changing what the tokens decode to.
//
// S2 rather than DEFLATE: decoding an S2 block is a loop of copies with no tables to build
// (DEFLATE built Huffman tables on every cold decode, about 10 µs per Redis read), and the
// JSON the dictionary matches is where the saving is; the random parts (signatures, keys,
// ciphertexts) are literals either way.
//
// Compression happens before sealing, within one record, against a dictionary made of public
// constants and that same record's fields, which are stored in the clear next to it: no data
// of another user or session ever shares a compressed block (no compression oracle across
// users). What the compressed length can reveal is how much the tokens repeat claims that are
// already readable in the record.
const (
	tokensV3 byte = 0x03

	// maxTokensPlain bounds what a stored token plaintext may decode to (checked on the
	// block's declared length before decoding); a session's three tokens are a few KiB.
	// Larger texts are stored in format 2.
	maxTokensPlain = 64 << 10
	// maxZipDictRecord bounds the record part of the dictionary: roles and groups past it are
	// left out (the dictionary must stay within s2.MaxDictSize).
	maxZipDictRecord = 8 << 10
	// zipDictRepeat is the dictionary's first repeat offset (where an S2 repeat copy copies
	// from before any other copy). Pointing it at the RS256 header instead saves nothing on a
	// login's tokens.
	zipDictRepeat = 0
)

// zipDictStatic is the constant start of the dictionary: JOSE headers and OIDC / JWT claims as
// IdPs write them (compact JSON), the likeliest last (an S2 copy of 4 to 11 bytes from less
// than 2 KiB back costs 2 bytes, from farther 3).
const zipDictStatic = `{"alg":"HS256","typ":"JWT"}{"alg":"dir","enc":"A256GCM","kid":"` +
	`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"{"alg":"RSA-OAEP-256","enc":"A128CBC-HS256","cty":"JWT","kid":"` +
	`{"typ":"at+jwt","alg":"PS256","kid":"{"typ":"JWT","alg":"ES256","kid":"{"alg":"ES256","kid":"","typ":"JWT"}` +
	`"x5t":"","x5t#S256":"","jku":"https://` +
	`"aio":"","idp":"https://sts.windows.net/","ipaddr":"","oid":"","tid":"","upn":"","unique_name":"",` +
	`"uti":"","rh":"0.","ver":"2.0","wids":["","scp":"openid profile email User.Read","xms_tcdt":,"appid":"","appidacr":"1",` +
	`"iss":"https://login.microsoftonline.com/","/v2.0","https://sts.windows.net/","login_hint":"` +
	`"typ":"Refresh","typ":"Offline","typ":"ID","typ":"Bearer","acr":"1","allowed-origins":["https://","http://localhost:"],` +
	`"realm_access":{"roles":["offline_access","uma_authorization","default-roles-"]},` +
	`"resource_access":{"account":{"roles":["manage-account","manage-account-links","view-profile"]}},` +
	`"session_state":"","scope":"openid profile email offline_access","scope":"openid email profile",` +
	`/realms/","/protocol/openid-connect","email_verified":false,"given_name":"","family_name":"",` +
	`"locale":"en","picture":"https://","updated_at":,"nbf":,"jti":"","nickname":"","https://` +
	`{"alg":"A256GCMKW","enc":"A256GCM","iv":"","kid":"","tag":"` +
	`{"alg":"RS256","kid":"","typ":"JWT"}` +
	`{"amr":["pwd"],"at_hash":"","aud":["","auth_time":1,"azp":"","c_hash":"","client_id":"",` +
	`"email":"","email_verified":true,"exp":1,"groups":["","iat":1,"iss":"http://","name":"",` +
	`"nonce":"","preferred_username":"","roles":["","scope":"openid profile email","sid":"","sub":"`

// zipDictRecord appends the record part of the dictionary: rec's identity fields as claims,
// most likely matched last. Decoding rebuilds it from the fields of the same stored record,
// which only change in the backend with the whole record, tokens included, re-encoded (the
// in-place touch writes LastSeenAt only; see the format comment in record_v2.go).
func zipDictRecord(b []byte, rec *Record) []byte {
	start := len(b)
	for _, list := range [2]struct {
		claim string
		vals  []string
	}{{`"groups":[`, rec.Groups}, {`"roles":[`, rec.Roles}} {
		if len(list.vals) == 0 {
			continue
		}
		b = append(b, list.claim...)
		for i, v := range list.vals {
			if len(b)-start+len(v) > maxZipDictRecord {
				break
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), v...), '"')
		}
		b = append(b, "],"...)
	}
	for _, f := range [5][2]string{{`"name":"`, rec.Name}, {`"sid":"`, rec.IdPSessionID},
		{`"email":"`, rec.Email}, {`"sub":"`, rec.Subject}, {`"iss":"`, rec.Issuer}} {
		if f[1] == "" || len(b)-start+len(f[1]) > maxZipDictRecord {
			continue
		}
		b = append(append(append(b, f[0]...), f[1]...), `",`...)
	}
	return b
}

// tokenADv3 is the associated data of format-3 tokens: the handle and the record part of the
// dictionary they were compressed against.
func tokenADv3(b []byte, handle string, dictRecord []byte) []byte {
	b = append(b, "authgate/session/tokens-v3\x00"...)
	b = binary.AppendUvarint(b, uint64(len(handle)))
	return append(append(b, handle...), dictRecord...)
}

// zipBufs are the buffers of one compression or decompression, pooled: the dictionary
// (zipDictStatic, then the record part), the associated data, the opened plaintext, the output.
type zipBufs struct {
	dict, ad, plain, out []byte
}

var zipPool = sync.Pool{New: func() any { return &zipBufs{dict: []byte(zipDictStatic)} }}

// zipDict builds rec's dictionary in z.dict. S2 reads up to 16 bytes past a dictionary and
// copies one that lacks that capacity; the buffer keeps it, so s2.MakeDictManual shares
// z.dict. (The caller makes the s2.Dict: made and used for decoding within one function, it
// stays on the stack.)
func (z *zipBufs) zipDict(rec *Record) {
	z.dict = slices.Grow(zipDictRecord(z.dict[:len(zipDictStatic)], rec), 16)
}

// release clears the plaintext buffers and returns z to the pool.
func (z *zipBufs) release() {
	clear(z.plain[:cap(z.plain)])
	clear(z.out[:cap(z.out)])
	z.plain, z.out = z.plain[:0], z.out[:0]
	zipPool.Put(z)
}

// sealTokens seals rec's tokens: format 3 when that is shorter than format 2 (zipped true),
// else format 2. The plaintexts are cleared before their buffers are dropped or reused.
//
// The encoder is s2's fastest (Dict.Encode): it builds a 32 KiB hash table of the dictionary
// for each record (the dictionary is per record), where EncodeBetter builds 288 KiB and
// EncodeBest 2.25 MiB, for a few bytes less: on the devidp login's 1,014 bytes of texts
// (exampleRecord) 652 bytes in about 10 µs, against 639 in 85 µs and 634 in 370 µs.
func (k keys) sealTokens(rec *Record) (sealed []byte, zipped bool, _ error) {
	plain := tokensV2Plain(rec)
	defer clear(plain)
	v2 := func() ([]byte, bool, error) {
		sealed, err := k.sealer.seal(plain, tokenAD(rec.Handle))
		return sealed, false, err
	}
	texts := plain[1:]
	if len(texts) > maxTokensPlain {
		return v2()
	}
	z := zipPool.Get().(*zipBufs)
	defer z.release()
	z.zipDict(rec)
	d := s2.MakeDictManual(z.dict, zipDictRepeat)
	if d == nil { // not reached: the dictionary is within s2's bounds
		return v2()
	}
	z.out = append(slices.Grow(z.out[:0], 1+s2.MaxEncodedLen(len(texts))), tokensV3)
	z.out = append(z.out, d.Encode(z.out[1:cap(z.out)], texts)...) // encoded in place
	if len(z.out) >= len(plain) {
		return v2()
	}
	z.ad = tokenADv3(z.ad[:0], rec.Handle, z.dict[len(zipDictStatic):])
	sealed, err := k.sealer.seal(z.out, z.ad)
	return sealed, true, err
}

// openTokensV3 opens sealed (format 3) and fills rec's tokens; rec's other fields must already
// hold the stored record's (they make the dictionary). A block that declares more than
// maxTokensPlain, is not exactly one valid block, or decodes to texts that do not parse is
// errCorrupt.
func (k keys) openTokensV3(sealed []byte, handle string, rec *Record) error {
	z := zipPool.Get().(*zipBufs)
	defer z.release()
	z.zipDict(rec)
	d := s2.MakeDictManual(z.dict, zipDictRepeat)
	z.ad = tokenADv3(z.ad[:0], handle, z.dict[len(zipDictStatic):])
	plain, err := k.sealer.openTo(z.plain[:0], sealed, z.ad)
	if err != nil {
		return err
	}
	z.plain = plain
	if len(plain) == 0 || plain[0] != tokensV3 {
		return errCorrupt
	}
	n, err := s2.DecodedLen(plain[1:])
	if err != nil || n > maxTokensPlain {
		return errCorrupt
	}
	z.out = slices.Grow(z.out[:0], 1+n)[:1+n]
	z.out[0] = tokensV2
	if d == nil {
		return errCorrupt // not reached: the dictionary is within s2's bounds
	}
	if _, err := d.Decode(z.out[1:], plain[1:]); err != nil {
		return errCorrupt
	}
	return decodeTokensV2(z.out, rec)
}
