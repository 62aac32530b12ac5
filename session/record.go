package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/sessions"
)

// Record is the server-side state of one session. The gateway builds it at login, puts it in a
// gorilla session with SetRecord and saves it; on later requests Get loads it back.
//
// Tokens are plaintext in memory only: the store seals them with AES-256-GCM before they reach
// the backend. The caller must never log a Record whole or send its tokens to a browser.
//
// A Record from Store.Load may be shared (with the session cache and concurrent requests) and
// must not be modified: Clone it before changing anything. Get, Lookup and the listings
// return the caller's own copies.
type Record struct {
	Handle string `json:"-"` // set by the store; base64url(SHA-256(id))[:22]; never the cookie value

	UserID, Subject, Issuer, Email string
	EmailVerified                  bool
	Name                           string
	Roles, Groups                  []string
	IdPSessionID                   string // OIDC `sid`, for back-channel logout
	Provider                       string

	IDToken, AccessToken, RefreshToken string // plaintext in memory only
	TokenExpiry                        time.Time

	CreatedAt, LastSeenAt, ExpiresAt time.Time // ExpiresAt = absolute expiry
	IP, UserAgent                    string
}

// Clone returns a copy of r that shares nothing mutable with it (strings are immutable; the
// Roles and Groups arrays are copied).
func (r *Record) Clone() *Record { return r.clone() }

// valuesKey is the type of RecordKey, so no other package's key can collide with it.
type valuesKey string

// RecordKey is the key of the *Record in sessions.Session.Values. Use RecordFrom and SetRecord
// rather than touching Values directly. Other Values are not persisted.
const RecordKey valuesKey = "authgate/session.Record"

// RecordFrom returns the record held by s, or nil when s is nil or holds none (a new session).
func RecordFrom(s *sessions.Session) *Record {
	if s == nil {
		return nil
	}
	rec, _ := s.Values[RecordKey].(*Record)
	return rec
}

// SetRecord puts r into s; Save persists it. A nil r removes the record.
func SetRecord(s *sessions.Session, r *Record) {
	if r == nil {
		delete(s.Values, RecordKey)
		return
	}
	s.Values[RecordKey] = r
}

var errCorrupt = errors.New("session: stored record is corrupt")

func tokenAD(handle string) []byte { return []byte("authgate/session/tokens\x00" + handle) }

// encodeRecord serialises rec for the backend in the binary format version 2 (record_v2.go)
// with write tag tag, its tokens compressed when that makes them shorter (tokenzip.go) and
// sealed to rec.Handle. Times are written to the millisecond
// (see storedTime).
func (k keys) encodeRecord(rec *Record, tag uint32) ([]byte, error) {
	var (
		sealed []byte
		zipped bool
	)
	if rec.IDToken != "" || rec.AccessToken != "" || rec.RefreshToken != "" {
		var err error
		if sealed, zipped, err = k.sealTokens(rec); err != nil {
			return nil, err
		}
	}
	n := binaryLen(rec) + binary.MaxVarintLen64 + len(sealed)
	return appendRecordV2UA(make([]byte, 0, n), rec, tag, sealed, zipped, k.ua.zip(rec.UserAgent)), nil
}

// decodeRecord parses a stored record of handle (format 1 or 2). With withTokens false the
// sealed tokens are neither opened nor returned (listing for operators). Anything that does
// not parse exactly, or whose tokens do not open for handle, is errCorrupt.
func (k keys) decodeRecord(handle string, raw []byte, withTokens bool) (*Record, error) {
	if len(raw) == 0 {
		return nil, errCorrupt
	}
	rec := &Record{Handle: handle}
	var (
		sealed []byte
		err    error
	)
	switch raw[0] {
	case recordV2:
		sealed, err = decodeRecordV2(raw, rec, k.ua)
	case recordV1:
		sealed, err = decodeRecordV1(raw, rec)
	default:
		return nil, fmt.Errorf("%w: unknown format %#x", errCorrupt, raw[0])
	}
	if err != nil {
		return nil, err
	}
	if rec.ExpiresAt.IsZero() || rec.LastSeenAt.IsZero() {
		return nil, errCorrupt
	}
	if !withTokens || sealed == nil {
		return rec, nil
	}
	if raw[0] == recordV2 {
		if raw[v2Header]&flagZipped != 0 {
			err = k.openTokensV3(sealed, handle, rec)
		} else {
			err = k.openTokensV2(sealed, handle, rec)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tokens: %w", errCorrupt, err)
		}
		return rec, nil
	}
	plain, err := k.sealer.open(sealed, tokenAD(handle))
	if err != nil {
		return nil, fmt.Errorf("%w: tokens: %w", errCorrupt, err)
	}
	if err := decodeTokensV1(plain, rec); err != nil {
		return nil, fmt.Errorf("%w: tokens", err)
	}
	return rec, nil
}

// expired reports whether rec is past its idle or absolute timeout at now.
func (s *Store) expired(rec *Record, now time.Time) bool {
	return !now.Before(rec.ExpiresAt) ||
		!now.Before(rec.CreatedAt.Add(s.opts.AbsoluteTimeout)) ||
		now.Sub(rec.LastSeenAt) > s.opts.IdleTimeout
}

// ttlFor is how long the backend keeps rec: min(idle left, absolute left). Nothing outlives
// its timeouts; a result <= 0 means the record is already dead.
func (s *Store) ttlFor(rec *Record, now time.Time) time.Duration {
	ttl := rec.LastSeenAt.Add(s.opts.IdleTimeout).Sub(now)
	if abs := rec.ExpiresAt.Sub(now); abs < ttl {
		ttl = abs
	}
	return ttl
}
