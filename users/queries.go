package users

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// Limits for List and FindByEmail.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// upsertSQL is the single statement of a login. A new row gets the id generated in Go; on
// conflict the existing id, created_at, granted_roles and disabled are kept. updated_at moves
// only when the profile changed; last_login_at does not move for a disabled user (whose login
// the caller refuses).
const upsertSQL = `INSERT INTO users (id, issuer, subject, email, email_verified, name, roles, "groups",
	granted_roles, disabled, created_at, updated_at, last_login_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', FALSE, ?, ?, ?)
ON CONFLICT (issuer, subject) DO UPDATE SET
	email = excluded.email,
	email_verified = excluded.email_verified,
	name = excluded.name,
	roles = excluded.roles,
	"groups" = excluded."groups",
	updated_at = CASE WHEN users.email <> excluded.email
		OR users.email_verified <> excluded.email_verified
		OR users.name <> excluded.name
		OR users.roles <> excluded.roles
		OR users."groups" <> excluded."groups"
		THEN excluded.updated_at ELSE users.updated_at END,
	last_login_at = CASE WHEN users.disabled THEN users.last_login_at ELSE excluded.last_login_at END
RETURNING ` + userColumns

// Upsert records a login: it inserts the user or updates the profile of the existing one
// (issuer, subject) in ONE statement, so concurrent first logins of one person make one row.
// The id is stable across logins. IdP roles and groups are overwritten; granted roles and the
// disabled flag are never touched. The caller must have verified the ID token, and MUST refuse
// the login when the returned user is Disabled.
func (s *Store) Upsert(ctx context.Context, p Profile) (User, error) {
	if p.Issuer == "" || p.Subject == "" {
		return User{}, errors.New("users: upsert: issuer and subject are required")
	}
	now := s.clock()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row userRow
	err := s.db.GetContext(ctx, &row, s.rebind(upsertSQL),
		uuid.NewString(), p.Issuer, p.Subject, p.Email, p.EmailVerified, p.Name,
		jsonList(normalizeList(p.Roles)), jsonList(normalizeList(p.Groups)), now, now, now)
	if err != nil {
		return User{}, wrapErr("upsert", err)
	}
	return row.user(), nil
}

// Get returns the user with this id, or an error wrapping ErrNotFound (also for an id that is
// not a uuid).
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return User{}, wrapErr("get", ErrNotFound)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row userRow
	err = s.db.GetContext(ctx, &row, s.rebind(`SELECT `+userColumns+` FROM users WHERE id = ?`), uid.String())
	if err != nil {
		return User{}, wrapErr("get", err)
	}
	return row.user(), nil
}

// FindByEmail returns the users whose email equals email, case-insensitively as the database's
// lower() folds it (SQLite: ASCII letters only), using the lower(email) index (an email is not
// unique: several IdPs or accounts may share one), most recent login first. limit <= 0 means
// DefaultListLimit; it is capped at MaxListLimit. An email is informational: never authorize by
// it unless the IdP marked it verified (User.EmailVerified).
func (s *Store) FindByEmail(ctx context.Context, email string, limit int) ([]User, error) {
	return s.list(ctx, "find by email",
		`SELECT `+userColumns+` FROM users WHERE lower(email) = lower(CAST(? AS TEXT))
		ORDER BY last_login_at DESC, id LIMIT ?`, strings.TrimSpace(email), clampLimit(limit))
}

// List returns users, most recent login first. limit <= 0 means DefaultListLimit; it is capped
// at MaxListLimit.
func (s *Store) List(ctx context.Context, limit int) ([]User, error) {
	return s.list(ctx, "list",
		`SELECT `+userColumns+` FROM users ORDER BY last_login_at DESC, id LIMIT ?`, clampLimit(limit))
}

func (s *Store) list(ctx context.Context, op, query string, args ...any) ([]User, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var rows []userRow
	if err := s.db.SelectContext(ctx, &rows, s.rebind(query), args...); err != nil {
		return nil, wrapErr(op, err)
	}
	out := make([]User, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.user())
	}
	return out, nil
}

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultListLimit
	case limit > MaxListLimit:
		return MaxListLimit
	default:
		return limit
	}
}

// SetDisabled sets or clears the disabled flag and returns the updated user (ErrNotFound when
// there is none). Disabling also queues a user_disabled audit event (without request details);
// the caller must still end the user's live sessions (the per-request path never reads the
// database), and should not record a second user_disabled event.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool) (User, error) {
	u, err := s.update(ctx, "set disabled", id, `disabled = ?`, disabled)
	if err == nil && disabled {
		s.Audit(Event{Kind: KindUserDisabled, UserID: u.ID, Reason: "disabled by operator"})
	}
	return u, err
}

// GrantRoles replaces the operator-granted roles of a user (trimmed, sorted, de-duplicated;
// nil or empty clears them) and returns the updated user. Upsert never touches them. Live
// sessions keep the roles they were created with until the user logs in again.
func (s *Store) GrantRoles(ctx context.Context, id string, roles []string) (User, error) {
	return s.update(ctx, "grant roles", id, `granted_roles = ?`, jsonList(normalizeList(roles)))
}

// update sets one column (setSQL has one placeholder) and updated_at, returning the row.
func (s *Store) update(ctx context.Context, op, id, setSQL string, value any) (User, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return User{}, wrapErr(op, ErrNotFound)
	}
	now := s.clock()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row userRow
	err = s.db.GetContext(ctx, &row,
		s.rebind(`UPDATE users SET `+setSQL+`, updated_at = ? WHERE id = ? RETURNING `+userColumns),
		value, now, uid.String())
	if err != nil {
		return User{}, wrapErr(op, err)
	}
	return row.user(), nil
}
