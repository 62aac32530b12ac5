package session

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Binary record format, version 2 (what encodeRecord writes; version 1 is still decoded):
//
//	0xA2 | LastSeenAt (8) | tag (4) | flags | CreatedAt | ExpiresAt | [TokenExpiry] | [sealed tokens] | 9 strings | roles | groups
//
// LastSeenAt is a big-endian int64 of Unix milliseconds at offset 1, so the idle-expiry touch
// rewrites these 8 bytes in place (SETRANGE, see touchLua) without sending the record. tag,
// big-endian at offset 9, is random per write (newTag): the touch only succeeds while the
// stored record carries the tag of the copy it was made from, so a touch never stands for a
// record rewritten meanwhile. flags: bit 0 EmailVerified, bit 1 TokenExpiry present, bit 2
// sealed tokens present, bit 3 sealed tokens in format 3 (only with bit 2), bit 4 the user
// agent is a raw text holding an S2 block against a constant dictionary (uazip.go). CreatedAt
// is a varint of Unix milliseconds, ExpiresAt and TokenExpiry varints of milliseconds from
// CreatedAt; the sealed tokens are a uvarint length then the blob. The 9 strings are as in
// version 1 (UserID, Subject, Issuer, Email, Name, IdPSessionID, Provider, IP, UserAgent),
// roles and groups a uvarint count then that many strings, every string a text (below).
// Times are kept to the millisecond: the Store floors them before writing (storedTime), so
// what a caller holds after Save or Update is what is stored.
//
// The sealed tokens open to 0x02 | ID token | access token | refresh token, each a text; or,
// with flags bit 3, to 0x03 | an S2 block (klauspost/compress/s2) of those three texts
// compressed against a dictionary made of constants and of this record's Issuer, Subject,
// Email, Name, IdPSessionID, roles and groups (tokenzip.go, which says why this is no
// compression oracle), sealed with associated data that covers those fields. Format 3 is
// written only when it is shorter than format 2, and decodes to at most 64 KiB. The
// fields may serve as dictionary because nothing changes them in the backend without
// re-encoding the whole record, tokens included: every write goes through encodeRecord, and
// the in-place touch (touchLua, memBackend.touch) writes LastSeenAt at offset 1 only, after
// checking the version and tag.
//
// A text is a uvarint h then: h even: h/2 raw bytes; h == 1: a UUID in canonical lower-case
// form (8-4-4-4-12 hex digits), its 16 bytes; h odd, h > 1: h/2 dot-separated base64url parts
// (a JWT has 3, a JWE 5; an opaque base64url token 1), each a uvarint length and its decoded
// bytes. A text takes a binary form only when it decodes back to exactly the same string
// (appendText checks by decoding) and is shorter; anything else is stored raw.
//
// A new layout must take a new first byte and keep the decoders of the older ones.
const (
	recordV2 byte = 0xA2
	tokensV2 byte = 0x02

	v2LastSeenAt = 1  // offset of LastSeenAt
	v2Tag        = 9  // offset of the write tag
	v2Header     = 13 // version, LastSeenAt, tag

	flagTokenExpiry byte = 1 << 1
	flagSealed      byte = 1 << 2
	flagZipped      byte = 1 << 3 // the sealed tokens are format 3 (tokenzip.go)
	flagsV2              = flagEmailVerified | flagTokenExpiry | flagSealed | flagZipped | flagUAZipped

	maxTokenParts = 8 // a JWS has 3 parts, a JWE 5
)

// storedTime is t as format v2 keeps it: floored to the millisecond, UTC. The zero time stays
// zero.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// newTag is the tag of a new write (format 2): random, so that a touch made from an older
// copy of the record does not match (2^-32 chance of a false match, which at worst keeps an
// outdated copy in a cache until CacheTTL, as a lost invalidation does).
func newTag() uint32 { return rand.Uint32() }

func fromMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// appendRecordV2UA appends the version-2 encoding of rec with its already sealed tokens, in
// format 3 when zipped, and its user agent as uaBlock, its S2 block (uazip.go), or as it is
// when uaBlock is nil.
func appendRecordV2UA(b []byte, rec *Record, tag uint32, sealed []byte, zipped bool, uaBlock []byte) []byte {
	b = appendTouchHeader(b, rec, tag)
	var flags byte
	if rec.EmailVerified {
		flags |= flagEmailVerified
	}
	if !rec.TokenExpiry.IsZero() {
		flags |= flagTokenExpiry
	}
	if len(sealed) > 0 {
		flags |= flagSealed
		if zipped {
			flags |= flagZipped
		}
	}
	if uaBlock != nil {
		flags |= flagUAZipped
	}
	created := rec.CreatedAt.UnixMilli()
	b = append(b, flags)
	b = binary.AppendVarint(b, created)
	b = binary.AppendVarint(b, rec.ExpiresAt.UnixMilli()-created)
	if flags&flagTokenExpiry != 0 {
		b = binary.AppendVarint(b, rec.TokenExpiry.UnixMilli()-created)
	}
	if flags&flagSealed != 0 {
		b = binary.AppendUvarint(b, uint64(len(sealed)))
		b = append(b, sealed...)
	}
	for i, s := range recordStrings(rec) {
		if i == 8 && uaBlock != nil { // the user agent: a raw text holding its block
			b = binary.AppendUvarint(b, uint64(len(uaBlock))<<1)
			b = append(b, uaBlock...)
			continue
		}
		b = appendText(b, s)
	}
	for _, list := range [2][]string{rec.Roles, rec.Groups} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendText(b, s)
		}
	}
	return b
}

// appendTouchHeader appends the first v2Header bytes of the version-2 encoding of rec: what
// the in-place touch checks (version, tag) and writes (LastSeenAt).
func appendTouchHeader(b []byte, rec *Record, tag uint32) []byte {
	b = append(b, recordV2)
	b = binary.BigEndian.AppendUint64(b, uint64(rec.LastSeenAt.UnixMilli()))
	return binary.BigEndian.AppendUint32(b, tag)
}

// tagOf is the write tag of a stored record; 0 for format 1 (which has none).
func tagOf(raw []byte) uint32 {
	if len(raw) < v2Header || raw[0] != recordV2 {
		return 0
	}
	return binary.BigEndian.Uint32(raw[v2Tag:])
}

// decodeRecordV2 parses a version-2 record into rec (handle and tokens aside) and returns the
// sealed tokens, a sub-slice of raw. The strings of rec are cut from one copy of the part of
// raw after the sealed tokens, so a decoded record keeps neither raw nor the sealed blob.
func decodeRecordV2(raw []byte, rec *Record, ua uaZipper) ([]byte, error) {
	if len(raw) < v2Header+1 {
		return nil, errCorrupt
	}
	rec.LastSeenAt = fromMilli(int64(binary.BigEndian.Uint64(raw[v2LastSeenAt:])))
	flags := raw[v2Header]
	if flags&^flagsV2 != 0 || flags&(flagZipped|flagSealed) == flagZipped {
		return nil, errCorrupt
	}
	rec.EmailVerified = flags&flagEmailVerified != 0
	off := v2Header + 1
	varint := func() int64 {
		if off < 0 {
			return 0
		}
		v, n := binary.Varint(raw[off:])
		if n <= 0 {
			off = -1
			return 0
		}
		off += n
		return v
	}
	created := varint()
	rec.CreatedAt = fromMilli(created)
	rec.ExpiresAt = fromMilli(created + varint())
	if flags&flagTokenExpiry != 0 {
		rec.TokenExpiry = fromMilli(created + varint())
	}
	if off < 0 {
		return nil, errCorrupt
	}
	var sealed []byte
	if flags&flagSealed != 0 {
		l, n := binary.Uvarint(raw[off:])
		if n <= 0 || l == 0 || l > uint64(len(raw)-off-n) {
			return nil, errCorrupt
		}
		off += n
		sealed = raw[off : off+int(l) : off+int(l)]
		off += int(l)
	}
	var uaz *uaZipper
	if flags&flagUAZipped != 0 {
		uaz = &ua
	}
	if err := decodeMetaV2(raw, off, rec, uaz); err != nil {
		return nil, err
	}
	return sealed, nil
}

// decodeMetaV2 reads the strings, roles and groups at off, which must end raw. All strings
// are cut from one string, the roles and groups share one backing array. With ua non-nil the
// user agent is a raw text holding its S2 block (uazip.go), which must expand exactly.
func decodeMetaV2(raw []byte, off int, rec *Record, ua *uaZipper) error {
	// First pass: check the structure and count the text; second: write it and cut it.
	var nRoles, nGroups uint64
	total, o := 0, off
	for i := range 11 {
		if i == 9 || i == 10 { // the roles, then the groups
			n, m := binary.Uvarint(raw[o:])
			if m <= 0 || n > uint64(len(raw)-o-m) { // every text takes a byte at least
				return errCorrupt
			}
			o += m
			if i == 9 {
				nRoles = n
			} else {
				nGroups = n
			}
			for range n {
				l, next, ok := scanText(raw, o, nil)
				if !ok {
					return errCorrupt
				}
				total, o = total+l, next
			}
			continue
		}
		if i == 8 && ua != nil {
			block, next, ok := rawTextAt(raw, o)
			n, fits := ua.expandedLen(block)
			if !ok || !fits {
				return errCorrupt
			}
			total, o = total+n, next
			continue
		}
		l, next, ok := scanText(raw, o, nil)
		if !ok {
			return errCorrupt
		}
		total, o = total+l, next
	}
	if o != len(raw) {
		return errCorrupt
	}
	var sb strings.Builder
	sb.Grow(total)
	var all []string
	if nRoles+nGroups > 0 {
		all = make([]string, nRoles+nGroups)
	}
	var ends [9]int
	listEnds := make([]int, 0, 16)
	o = off
	for i := range ends {
		if i == 8 && ua != nil {
			block, next, _ := rawTextAt(raw, o)
			n, _ := ua.expandedLen(block)
			if !ua.expand(&sb, block, n) {
				return errCorrupt
			}
			o, ends[i] = next, sb.Len()
			continue
		}
		_, o, _ = scanText(raw, o, &sb)
		ends[i] = sb.Len()
	}
	for range 2 {
		n, m := binary.Uvarint(raw[o:])
		o += m
		for range n {
			_, o, _ = scanText(raw, o, &sb)
			listEnds = append(listEnds, sb.Len())
		}
	}
	text, at := sb.String(), 0
	for i, p := range [9]*string{&rec.UserID, &rec.Subject, &rec.Issuer, &rec.Email, &rec.Name,
		&rec.IdPSessionID, &rec.Provider, &rec.IP, &rec.UserAgent} {
		*p, at = text[at:ends[i]], ends[i]
	}
	for i, end := range listEnds {
		all[i], at = text[at:end], end
	}
	if nRoles > 0 {
		rec.Roles = all[:nRoles:nRoles]
	}
	if nGroups > 0 {
		rec.Groups = all[nRoles:]
	}
	return nil
}

// tokensV2Plain is the plaintext that encodeRecord seals: the three tokens as texts.
func tokensV2Plain(rec *Record) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(rec.IDToken) + len(rec.AccessToken) + len(rec.RefreshToken)
	b := append(make([]byte, 0, n), tokensV2)
	for _, t := range [3]string{rec.IDToken, rec.AccessToken, rec.RefreshToken} {
		b = appendText(b, t)
	}
	return b
}

// appendText appends t as a text: in a binary form when that is shorter and decodes back to
// exactly t, else raw.
func appendText(b []byte, t string) []byte {
	start := len(b)
	raw := uvarintLen(uint64(len(t))<<1) + len(t)
	if u, ok := parseUUID(t); ok {
		return append(append(b, 1), u[:]...)
	}
	if parts := strings.Count(t, ".") + 1; parts <= maxTokenParts && len(t) >= 4 {
		b = binary.AppendUvarint(b, uint64(parts)<<1|1)
		ok := true
		for p := range strings.SplitSeq(t, ".") {
			dec, err := b64.DecodeString(p)
			if err != nil || b64.EncodedLen(len(dec)) != len(p) {
				ok = false
				break
			}
			b = binary.AppendUvarint(b, uint64(len(dec)))
			b = append(b, dec...)
		}
		if ok && len(b)-start < raw {
			var sb strings.Builder
			if _, _, back := scanText(b, start, &sb); back && sb.String() == t {
				return b
			}
		}
		b = b[:start]
	}
	b = binary.AppendUvarint(b, uint64(len(t))<<1)
	return append(b, t...)
}

const uuidLen = 36

// parseUUID reads a UUID in canonical lower-case form.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != uuidLen || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < uuidLen; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, lo := fromHex(s[i]), fromHex(s[i+1])
		if hi > 15 || lo > 15 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, true
}

func fromHex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 255
}

// appendUUID writes the canonical form of u.
func appendUUID(sb *strings.Builder, u []byte) {
	const digits = "0123456789abcdef"
	var buf [uuidLen]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = digits[c>>4], digits[c&15]
		j += 2
	}
	sb.Write(buf[:])
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// b64 is the encoding of JWT parts. Strict: non-zero padding bits are refused, so a part that
// decodes re-encodes to itself (appendToken checks anyway).
var b64 = base64.RawURLEncoding.Strict()

// tokenBufs recycles the plaintext buffers of opened tokens; they are cleared before reuse.
var tokenBufs = sync.Pool{New: func() any { return new([]byte) }}

// openTokensV2 opens sealed (version 2) and fills rec's tokens, all three cut from one string.
func (k keys) openTokensV2(sealed []byte, handle string, rec *Record) error {
	bp := tokenBufs.Get().(*[]byte)
	defer func() { clear((*bp)[:cap(*bp)]); tokenBufs.Put(bp) }()
	plain, err := k.sealer.openTo((*bp)[:0], sealed, tokenAD(handle))
	if err != nil {
		return err
	}
	*bp = plain
	return decodeTokensV2(plain, rec)
}

// decodeTokensV2 fills rec's tokens from an opened version-2 plaintext.
func decodeTokensV2(plain []byte, rec *Record) error {
	if len(plain) == 0 || plain[0] != tokensV2 {
		return errCorrupt
	}
	// First pass: check the structure and size the text; second: write it.
	var lens [3]int
	off := 1
	for i := range lens {
		n, next, ok := scanText(plain, off, nil)
		if !ok {
			return errCorrupt
		}
		lens[i], off = n, next
	}
	if off != len(plain) {
		return errCorrupt
	}
	var sb strings.Builder
	sb.Grow(lens[0] + lens[1] + lens[2])
	off = 1
	for range lens {
		_, off, _ = scanText(plain, off, &sb)
	}
	all := sb.String()
	rec.IDToken, rec.AccessToken, rec.RefreshToken = all[:lens[0]], all[lens[0]:lens[0]+lens[1]], all[lens[0]+lens[1]:]
	return nil
}

// scanText reads the text at off: its length and the offset after it. With sb not nil it
// writes the text too.
func scanText(plain []byte, off int, sb *strings.Builder) (n, next int, ok bool) {
	if off >= len(plain) {
		return 0, 0, false
	}
	h, m := binary.Uvarint(plain[off:])
	if m <= 0 {
		return 0, 0, false
	}
	off += m
	if h == 1 {
		if len(plain)-off < 16 {
			return 0, 0, false
		}
		if sb != nil {
			appendUUID(sb, plain[off:off+16])
		}
		return uuidLen, off + 16, true
	}
	if h&1 == 0 {
		l := h >> 1
		if l > uint64(len(plain)-off) {
			return 0, 0, false
		}
		if sb != nil {
			sb.Write(plain[off : off+int(l)])
		}
		return int(l), off + int(l), true
	}
	parts := h >> 1
	if parts > maxTokenParts {
		return 0, 0, false
	}
	for i := range parts {
		l, m := binary.Uvarint(plain[off:])
		if m <= 0 || l > uint64(len(plain)-off-m) {
			return 0, 0, false
		}
		off += m
		if i > 0 {
			n++
			if sb != nil {
				sb.WriteByte('.')
			}
		}
		n += b64.EncodedLen(int(l))
		if sb != nil {
			var buf [512]byte
			for p := plain[off : off+int(l)]; len(p) > 0; {
				c := min(len(p), 384) // whole 3-byte groups, so the chunks join without padding
				b64.Encode(buf[:], p[:c])
				sb.Write(buf[:b64.EncodedLen(c)])
				p = p[c:]
			}
		}
		off += int(l)
	}
	return n, off, true
}

// readLists reads the roles and groups into one backing array.
func readLists(r *reader, rec *Record) {
	// Roles and groups share one backing array: skip the roles to read the groups count first.
	nRoles := r.count()
	rolesAt := r.off
	for range nRoles {
		r.span()
	}
	nGroups := r.count()
	if r.bad || nRoles+nGroups == 0 {
		return
	}
	all := make([]string, nRoles+nGroups)
	r.off = rolesAt
	r.list(all[:nRoles])
	r.count() // the groups count again
	r.list(all[nRoles:])
	if nRoles > 0 {
		rec.Roles = all[:nRoles:nRoles]
	}
	if nGroups > 0 {
		rec.Groups = all[nRoles:]
	}
}
