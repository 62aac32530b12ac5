package session

import (
	"encoding/json"
	"fmt"
	"time"
)

// storedRecord is the legacy (pre-binary) backend encoding of a Record: JSON with the three
// tokens replaced by one sealed blob (JSON storedTokens) whose associated data is the handle.
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

// decodeLegacyRecord parses a JSON record written before the binary format; such records
// live at most AbsoluteTimeout, after which this decoder can go.
func (k keys) decodeLegacyRecord(handle string, raw []byte, withTokens bool) (*Record, error) {
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
