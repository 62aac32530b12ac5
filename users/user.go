package users

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is one row of the users table. ID is a uuid chosen at the first login and never changes;
// (Issuer, Subject) is the identity key; Email is informational (never a key).
// Roles and Groups are the IdP's values from the latest login; GrantedRoles are extra roles an
// operator granted in the database. Use EffectiveRoles for authorization decisions.
// Times are UTC.
type User struct {
	ID            string
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Roles         []string
	Groups        []string
	GrantedRoles  []string
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   time.Time
}

// EffectiveRoles returns the union of the IdP roles (Roles) and the operator-granted roles
// (GrantedRoles), sorted and de-duplicated, without empty strings. It never returns nil.
// Granting is additive only: a granted role cannot remove an IdP role.
func (u User) EffectiveRoles() []string {
	return normalizeList(append(slices.Clone(u.Roles), u.GrantedRoles...))
}

// Profile is what the IdP said about the user at login, the input of Store.Upsert.
// Issuer and Subject are required; the caller must have verified the ID token first.
type Profile struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Roles         []string
	Groups        []string
}

// normalizeList trims, drops empty values, sorts and de-duplicates. Never nil.
func normalizeList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// jsonList stores a []string as a JSON array in a text (SQLite) or jsonb (Postgres) column, so
// one SQL text serves both dialects.
type jsonList []string

// Value implements driver.Valuer: a JSON array, "[]" for nil.
func (l jsonList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	if err != nil {
		return nil, fmt.Errorf("users: encode list: %w", err)
	}
	return string(b), nil
}

// Scan implements sql.Scanner for text, bytes and NULL.
func (l *jsonList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = []string{}
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("users: scan list: unsupported type %T", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("users: scan list: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	*l = out
	return nil
}

// dbTime scans a timestamp that Postgres returns as time.Time and SQLite may return as text.
type dbTime struct{ time.Time }

// Scan implements sql.Scanner; the result is always UTC.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case time.Time:
		t.Time = v.UTC()
		return nil
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	default:
		return fmt.Errorf("users: scan time: unsupported type %T", src)
	}
}

func (t *dbTime) parse(s string) error {
	layouts := [...]string{
		"2006-01-02 15:04:05.999999999-07:00",
		"2006-01-02T15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
	}
	for _, layout := range layouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("users: scan time: unrecognised format %q", s)
}

// userRow is the scan target for the users table; userColumns lists its columns in order.
type userRow struct {
	ID            string   `db:"id"`
	Issuer        string   `db:"issuer"`
	Subject       string   `db:"subject"`
	Email         string   `db:"email"`
	EmailVerified bool     `db:"email_verified"`
	Name          string   `db:"name"`
	Roles         jsonList `db:"roles"`
	Groups        jsonList `db:"groups"`
	GrantedRoles  jsonList `db:"granted_roles"`
	Disabled      bool     `db:"disabled"`
	CreatedAt     dbTime   `db:"created_at"`
	UpdatedAt     dbTime   `db:"updated_at"`
	LastLoginAt   dbTime   `db:"last_login_at"`
}

const userColumns = `id, issuer, subject, email, email_verified, name, roles, "groups", granted_roles,
	disabled, created_at, updated_at, last_login_at`

func (r userRow) user() User {
	return User{
		ID:            r.ID,
		Issuer:        r.Issuer,
		Subject:       r.Subject,
		Email:         r.Email,
		EmailVerified: r.EmailVerified,
		Name:          r.Name,
		Roles:         []string(r.Roles),
		Groups:        []string(r.Groups),
		GrantedRoles:  []string(r.GrantedRoles),
		Disabled:      r.Disabled,
		CreatedAt:     r.CreatedAt.Time,
		UpdatedAt:     r.UpdatedAt.Time,
		LastLoginAt:   r.LastLoginAt.Time,
	}
}
