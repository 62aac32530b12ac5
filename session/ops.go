package session

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Listing bounds for List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// write stores rec under its handle with TTL min(idle, remaining absolute). The indexes are
// written first, so a session is never live without them (a stale index member is harmless:
// it is pruned on read, and dropped once past its session's absolute expiry, see index.go). rec's
// times are floored to the millisecond first (storedTime), as the format keeps them.
func (s *Store) write(ctx context.Context, rec *Record, mode setMode) error {
	now := s.now()
	rec.CreatedAt, rec.LastSeenAt = storedTime(rec.CreatedAt), storedTime(rec.LastSeenAt)
	rec.ExpiresAt, rec.TokenExpiry = storedTime(rec.ExpiresAt), storedTime(rec.TokenExpiry)
	key := s.sessionKey(rec.Handle)
	ttl := s.ttlFor(rec, now)
	if mode == setXX { // the session may be cached here and on other instances
		defer s.invalidate(ctx, rec.Handle)
	}
	if ttl < time.Millisecond || s.expired(rec, now) {
		if mode == setXX {
			if _, err := s.b.delMany(ctx, []string{key}); err != nil {
				return err
			}
		}
		return ErrNotFound
	}
	val, err := s.keys.encodeRecord(rec, newTag())
	if err != nil {
		return err
	}
	if err := s.addToIndexes(ctx, rec); err != nil {
		return err
	}
	ok, err := s.b.set(ctx, key, val, ttl, mode)
	switch {
	case err != nil:
		return err
	case !ok && mode == setNX:
		return errors.New("session: id collision")
	case !ok:
		return ErrNotFound
	}
	return nil
}

// Update rewrites the record named by rec.Handle (after a token refresh, say), keeping the
// TTL rules: TTL = min(idle from rec.LastSeenAt, remaining absolute); ExpiresAt is never moved
// past CreatedAt+AbsoluteTimeout. It returns ErrNotFound, and writes nothing, when the session
// was revoked or has expired: a revoked session is never resurrected (SET XX).
// Concurrent refreshes must be serialised by the caller (see TryLock).
func (s *Store) Update(ctx context.Context, rec *Record) error {
	if rec == nil || !validHandle(rec.Handle) {
		return ErrNotFound
	}
	if limit := rec.CreatedAt.Add(s.opts.AbsoluteTimeout); rec.ExpiresAt.After(limit) {
		rec.ExpiresAt = limit
	}
	return s.write(ctx, rec, setXX)
}

// Lookup returns the live session named handle, tokens included, without touching it.
// ErrNotFound when it does not exist, has expired or cannot be read with the current secrets.
// The caller must not show the tokens to anyone (the ops API shows the other fields only).
func (s *Store) Lookup(ctx context.Context, handle string) (*Record, error) {
	if !validHandle(handle) {
		return nil, ErrNotFound
	}
	raw, err := s.b.get(ctx, s.sessionKey(handle))
	if errors.Is(err, errMissing) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec, err := s.keys.decodeRecord(handle, raw, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if s.expired(rec, s.now()) {
		return nil, ErrNotFound
	}
	return rec, nil
}

// Revoke deletes the session named handle and drops it from the session cache of every
// instance (see Options.CacheTTL for the bound). ErrNotFound when there was no such session, so an ops API
// can answer 404; logout may ignore it.
func (s *Store) Revoke(ctx context.Context, handle string) error {
	if !validHandle(handle) {
		return ErrNotFound
	}
	raw, err := s.b.getDel(ctx, s.sessionKey(handle))
	if errors.Is(err, errMissing) {
		s.invalidate(ctx, handle) // a stale copy may still be cached somewhere
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	s.invalidate(ctx, handle)
	if rec, err := s.keys.decodeRecord(handle, raw, false); err == nil {
		for _, idx := range s.indexes(rec) {
			if err := s.b.removeFromIndex(ctx, idx, handle); err != nil {
				s.log.Warn("session: index cleanup after revoke", "handle", handle, "err", err)
			}
		}
	}
	return nil
}

// RevokeIdPSession ends every session made in the IdP session (issuer, sid) (back-channel
// logout with `sid`) and returns how many were live. An empty sid matches nothing.
func (s *Store) RevokeIdPSession(ctx context.Context, issuer, sid string) (int, error) {
	if sid == "" {
		return 0, nil
	}
	return s.revokeIndex(ctx, s.sidIndex(issuer, sid))
}

// RevokeSubject ends every session of the IdP subject (issuer, subject) and returns how many
// were live: back-channel logout with `sub` only, and every session of a user (disabling a
// user, ops API; the caller finds the user's issuer and subject). An empty subject matches
// nothing.
func (s *Store) RevokeSubject(ctx context.Context, issuer, subject string) (int, error) {
	if subject == "" {
		return 0, nil
	}
	return s.revokeIndex(ctx, s.subIndex(issuer, subject))
}

// revokeIndex deletes the sessions named in idx and removes exactly those members (a session
// added concurrently keeps its entry).
func (s *Store) revokeIndex(ctx context.Context, idx index) (int, error) {
	handles, err := s.b.members(ctx, idx)
	if err != nil || len(handles) == 0 {
		return 0, err
	}
	keys, valid := make([]string, 0, len(handles)), make([]string, 0, len(handles))
	for _, h := range handles {
		if validHandle(h) {
			keys, valid = append(keys, s.sessionKey(h)), append(valid, h)
		}
	}
	n, err := s.b.delMany(ctx, keys)
	s.invalidate(ctx, valid...) // even after an error: some may be gone
	if err != nil {
		return n, err
	}
	return n, s.b.removeFromIndex(ctx, idx, handles...)
}

// ListSubject returns the live sessions of the IdP subject (issuer, subject), which are those
// of the one user with that identity, newest first, WITHOUT tokens. Index entries of sessions
// that no longer exist are pruned. An empty subject matches nothing.
func (s *Store) ListSubject(ctx context.Context, issuer, subject string) ([]*Record, error) {
	if subject == "" {
		return nil, nil
	}
	idx := s.subIndex(issuer, subject)
	handles, err := s.b.members(ctx, idx)
	if err != nil {
		return nil, err
	}
	recs, dead, err := s.readMany(ctx, handles)
	if err != nil {
		return nil, err
	}
	if err := s.b.removeFromIndex(ctx, idx, dead...); err != nil {
		s.log.Warn("session: index prune", "err", err)
	}
	return recs, nil
}

// List returns up to limit live sessions (default 100, at most 1000), newest first, WITHOUT
// tokens. It runs a bounded SCAN, so on a large store it returns some sessions, not all.
func (s *Store) List(ctx context.Context, limit int) ([]*Record, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	prefix := s.opts.KeyPrefix + "s:{"
	keys, err := s.b.scanPrefix(ctx, prefix, limit)
	if err != nil {
		return nil, err
	}
	handles := make([]string, 0, len(keys))
	for _, k := range keys {
		if h := strings.TrimSuffix(strings.TrimPrefix(k, prefix), "}"); validHandle(h) {
			handles = append(handles, h)
		}
	}
	recs, _, err := s.readMany(ctx, handles)
	return recs, err
}

// readMany loads handles (without tokens), returning live records newest first and the
// handles that are gone, expired or unreadable.
func (s *Store) readMany(ctx context.Context, handles []string) (recs []*Record, dead []string, err error) {
	keys := make([]string, 0, len(handles))
	valid := handles[:0:0]
	for _, h := range handles {
		if validHandle(h) {
			keys, valid = append(keys, s.sessionKey(h)), append(valid, h)
		} else {
			dead = append(dead, h)
		}
	}
	raws, err := s.b.getMany(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	for i, raw := range raws {
		var rec *Record
		if raw != nil {
			rec, _ = s.keys.decodeRecord(valid[i], raw, false)
		}
		if rec == nil || s.expired(rec, now) {
			dead = append(dead, valid[i])
			continue
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].CreatedAt.After(recs[j].CreatedAt) })
	return recs, dead, nil
}

// Ping checks that the backend answers (readiness probe); the error wraps ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error { return s.b.ping(ctx) }
