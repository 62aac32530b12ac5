package session

import (
	"encoding/json"
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

// storedRecord is the backend encoding of a Record: JSON with the three tokens replaced by one
// sealed blob whose associated data is the handle.
type storedRecord struct {
	UserID        string    `json:"uid,omitempty"`
	Subject       string    `json:"sub,omitempty"`
	Issuer        string    `json:"iss,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"ev,omitempty"`
	Name          string    `json:"name,omitempty"`
	Roles         []string  `json:"roles,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	IdPSessionID  string    `json:"sid,omitempty"`
	Provider      string    `json:"prov,omitempty"`
	Tokens        []byte    `json:"tok,omitempty"`
	TokenExpiry   time.Time `json:"texp,omitzero"`
	CreatedAt     time.Time `json:"c"`
	LastSeenAt    time.Time `json:"ls"`
	ExpiresAt     time.Time `json:"exp"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"ua,omitempty"`
}

type storedTokens struct {
	ID      string `json:"i,omitempty"`
	Access  string `json:"a,omitempty"`
	Refresh string `json:"r,omitempty"`
}

var errCorrupt = errors.New("session: stored record is corrupt")

func tokenAD(handle string) []byte { return []byte("authgate/session/tokens\x00" + handle) }

// encodeRecord serialises rec for the backend, sealing its tokens to rec.Handle.
func (k keys) encodeRecord(rec *Record) ([]byte, error) {
	sr := storedRecord{
		UserID: rec.UserID, Subject: rec.Subject, Issuer: rec.Issuer, Email: rec.Email,
		EmailVerified: rec.EmailVerified, Name: rec.Name, Roles: rec.Roles, Groups: rec.Groups,
		IdPSessionID: rec.IdPSessionID, Provider: rec.Provider, TokenExpiry: rec.TokenExpiry,
		CreatedAt: rec.CreatedAt, LastSeenAt: rec.LastSeenAt, ExpiresAt: rec.ExpiresAt,
		IP: rec.IP, UserAgent: rec.UserAgent,
	}
	if rec.IDToken != "" || rec.AccessToken != "" || rec.RefreshToken != "" {
		plain, err := json.Marshal(storedTokens{ID: rec.IDToken, Access: rec.AccessToken, Refresh: rec.RefreshToken})
		if err != nil {
			return nil, fmt.Errorf("session: encode tokens: %w", err)
		}
		if sr.Tokens, err = k.sealer.seal(plain, tokenAD(rec.Handle)); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(sr)
	if err != nil {
		return nil, fmt.Errorf("session: encode record: %w", err)
	}
	return b, nil
}

// decodeRecord parses a stored record of handle. With withTokens false the sealed tokens are
// neither opened nor returned (listing for operators).
func (k keys) decodeRecord(handle string, raw []byte, withTokens bool) (*Record, error) {
	var sr storedRecord
	if err := json.Unmarshal(raw, &sr); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if sr.ExpiresAt.IsZero() || sr.LastSeenAt.IsZero() {
		return nil, errCorrupt
	}
	rec := &Record{
		Handle: handle, UserID: sr.UserID, Subject: sr.Subject, Issuer: sr.Issuer, Email: sr.Email,
		EmailVerified: sr.EmailVerified, Name: sr.Name, Roles: sr.Roles, Groups: sr.Groups,
		IdPSessionID: sr.IdPSessionID, Provider: sr.Provider, TokenExpiry: sr.TokenExpiry,
		CreatedAt: sr.CreatedAt, LastSeenAt: sr.LastSeenAt, ExpiresAt: sr.ExpiresAt,
		IP: sr.IP, UserAgent: sr.UserAgent,
	}
	if !withTokens || len(sr.Tokens) == 0 {
		return rec, nil
	}
	plain, err := k.sealer.open(sr.Tokens, tokenAD(handle))
	if err != nil {
		return nil, fmt.Errorf("%w: tokens: %w", errCorrupt, err)
	}
	var st storedTokens
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, fmt.Errorf("%w: tokens: %w", errCorrupt, err)
	}
	rec.IDToken, rec.AccessToken, rec.RefreshToken = st.ID, st.Access, st.Refresh
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
