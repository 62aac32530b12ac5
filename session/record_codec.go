package session

import (
	"encoding/binary"
	"time"
)

// Binary record format, version 1 (written until format 2, record_v2.go; still decoded, and
// rewritten as version 2 on the first read). The first byte names the format:
//
//	0xA1 | flags | 9 strings | roles | groups | 4 times | sealed tokens
//
// flags bit 0 is EmailVerified; the strings are UserID, Subject, Issuer, Email, Name,
// IdPSessionID, Provider, IP, UserAgent; roles and groups are a count then that many strings;
// the times are TokenExpiry, CreatedAt, LastSeenAt, ExpiresAt; a string or blob is a uvarint
// length then its bytes; a time is a varint of Unix seconds then a uvarint of nanoseconds (UTC).
// The sealed tokens open to: 0x01 | ID token | access token | refresh token.
//
// A new layout must take a new first byte and keep the decoder of this one.
const (
	recordV1 byte = 0xA1
	tokensV1 byte = 0x01

	flagEmailVerified byte = 1 << 0
)

// binaryLen is an upper bound of the encoded size of rec without its tokens.
func binaryLen(rec *Record) int {
	n := 2 + 4*(2*binary.MaxVarintLen64) + 3*binary.MaxVarintLen64
	for _, s := range recordStrings(rec) {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, s := range rec.Roles {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, s := range rec.Groups {
		n += binary.MaxVarintLen64 + len(s)
	}
	return n
}

func recordStrings(rec *Record) [9]string {
	return [9]string{rec.UserID, rec.Subject, rec.Issuer, rec.Email, rec.Name,
		rec.IdPSessionID, rec.Provider, rec.IP, rec.UserAgent}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader walks an encoded buffer. Strings are cut from str, one copy of the whole buffer, so a
// decoded record costs one allocation for all its strings. Any malformed input sets bad.
type reader struct {
	raw  []byte
	str  string // string(raw[base:])
	base int
	off  int
	bad  bool
}

// newReader reads raw from off; only raw[off:] is copied for the strings.
func newReader(raw []byte, off int) reader {
	return reader{raw: raw, str: string(raw[off:]), base: off, off: off}
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.raw[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.raw[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *reader) byte() byte {
	if r.bad || r.off >= len(r.raw) {
		r.bad = true
		return 0
	}
	r.off++
	return r.raw[r.off-1]
}

// span returns the bounds of the next length-prefixed field.
func (r *reader) span() (int, int) {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.raw)-r.off) {
		r.bad = true
		return r.off, r.off
	}
	start := r.off
	r.off += int(n)
	return start, r.off
}

func (r *reader) string() string {
	i, j := r.span()
	return r.str[i-r.base : j-r.base]
}

func (r *reader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= uint64(time.Second) {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// list reads len(dst) strings into dst.
func (r *reader) list(dst []string) {
	for i := range dst {
		dst[i] = r.string()
	}
}

// count reads a list length; every element takes at least one byte, which bounds it.
func (r *reader) count() int {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.raw)-r.off) {
		r.bad = true
		return 0
	}
	return int(n)
}

// decodeRecordV1 parses a version-1 record into rec (handle and tokens aside) and returns the
// sealed tokens, a sub-slice of raw.
func decodeRecordV1(raw []byte, rec *Record) ([]byte, error) {
	r := newReader(raw, 1)
	flags := r.byte()
	rec.EmailVerified = flags&flagEmailVerified != 0
	for _, p := range [9]*string{&rec.UserID, &rec.Subject, &rec.Issuer, &rec.Email, &rec.Name,
		&rec.IdPSessionID, &rec.Provider, &rec.IP, &rec.UserAgent} {
		*p = r.string()
	}
	readLists(&r, rec)
	if r.bad {
		return nil, errCorrupt
	}
	for _, p := range [4]*time.Time{&rec.TokenExpiry, &rec.CreatedAt, &rec.LastSeenAt, &rec.ExpiresAt} {
		*p = r.time()
	}
	i, j := r.span()
	if r.bad || r.off != len(r.raw) || flags&^flagEmailVerified != 0 {
		return nil, errCorrupt
	}
	if i == j {
		return nil, nil
	}
	return raw[i:j], nil
}

// decodeTokensV1 fills rec's tokens from an opened version-1 plaintext.
func decodeTokensV1(plain []byte, rec *Record) error {
	r := newReader(plain, 0)
	if r.byte() != tokensV1 {
		return errCorrupt
	}
	rec.IDToken, rec.AccessToken, rec.RefreshToken = r.string(), r.string(), r.string()
	if r.bad || r.off != len(r.raw) {
		return errCorrupt
	}
	return nil
}
