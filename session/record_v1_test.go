package session

import (
	"encoding/binary"
	"time"
)

// The version-1 encoder, retired from the Store, kept to test that version-1 records (written
// before format 2) still decode and are migrated.

// encodeRecordV1 is what encodeRecord wrote before format 2.
func (k keys) encodeRecordV1(rec *Record) ([]byte, error) {
	var sealed []byte
	if rec.IDToken != "" || rec.AccessToken != "" || rec.RefreshToken != "" {
		var err error
		if sealed, err = k.sealer.seal(tokensV1Plain(rec), tokenAD(rec.Handle)); err != nil {
			return nil, err
		}
	}
	return appendRecordV1(make([]byte, 0, binaryLen(rec)+len(sealed)), rec, sealed), nil
}

// appendRecordV1 appends the version-1 encoding of rec with its already sealed tokens.
func appendRecordV1(b []byte, rec *Record, sealed []byte) []byte {
	var flags byte
	if rec.EmailVerified {
		flags |= flagEmailVerified
	}
	b = append(b, recordV1, flags)
	for _, s := range recordStrings(rec) {
		b = appendString(b, s)
	}
	for _, list := range [2][]string{rec.Roles, rec.Groups} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendString(b, s)
		}
	}
	for _, t := range [4]time.Time{rec.TokenExpiry, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt} {
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	b = binary.AppendUvarint(b, uint64(len(sealed)))
	return append(b, sealed...)
}

// tokensV1Plain is the plaintext that encodeRecord seals: the three tokens.
func tokensV1Plain(rec *Record) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(rec.IDToken) + len(rec.AccessToken) + len(rec.RefreshToken)
	b := append(make([]byte, 0, n), tokensV1)
	b = appendString(b, rec.IDToken)
	b = appendString(b, rec.AccessToken)
	return appendString(b, rec.RefreshToken)
}
