package session

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
)

// Get loads the session named by the request's cookie. It does not use gorilla's registry.
// A Redis store serves a record read within Options.CacheTTL from its cache (see there for how
// a revocation still takes effect on every instance within the bound); otherwise it reads the
// backend.
//
// A missing, malformed, forged, expired or revoked cookie, or more than one cookie of this
// name (cookie tossing from a sibling domain), yields a new session (IsNew) and a nil error.
// A backend failure yields a new session and an error wrapping ErrUnavailable: the caller
// must fail closed. On success Values hold the *Record (RecordFrom), a copy the caller may
// modify; IsNew is false and ID is the raw session id, which the caller must never log or show.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	name = s.name(name)
	value, n := cookieValue(r, name)
	if n != 1 {
		if n > 1 {
			s.log.Debug("session: several session cookies, ignoring all", "count", n)
		}
		return s.fresh(name), nil
	}
	id, ok := s.keys.decodeCookie(name, value)
	if !ok {
		return s.fresh(name), nil
	}
	rec, err := s.load(r.Context(), id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return s.fresh(name), nil
		}
		return s.fresh(name), err
	}
	sess := s.fresh(name)
	sess.ID, sess.IsNew = id, false
	sess.Options.MaxAge = maxAgeSeconds(rec.ExpiresAt.Sub(s.now()))
	SetRecord(sess, rec)
	return sess, nil
}

// load returns a private copy of the live record of session id, with its tokens, enforcing
// the timeouts and touching LastSeenAt at most every TouchInterval. ErrNotFound when there is
// no live session.
func (s *Store) load(ctx context.Context, id string) (*Record, error) {
	var h [handleLen]byte
	putHandle(&h, id)
	now := s.now()
	if e := s.cache.get(h[:], now); e != nil {
		if rec, ok, err := s.fromCache(ctx, e, now); ok {
			return rec, err
		}
	}
	return s.loadBackend(ctx, string(h[:]), now)
}

// fromCache serves a cached entry. ok is false when the backend must be read instead: the
// cached copy looks expired (only the backend may say so) or a touch found it outdated.
func (s *Store) fromCache(ctx context.Context, e *cacheEntry, now time.Time) (*Record, bool, error) {
	if s.expired(e.rec, now) {
		s.cache.drop(e.rec.Handle)
		return nil, false, nil
	}
	rec := e.rec.clone()
	if now.Sub(rec.LastSeenAt) < s.opts.TouchInterval {
		return rec, true, nil
	}
	seen := rec.LastSeenAt
	rec, err := s.touch(ctx, s.sessionKey(rec.Handle), e.raw, rec, now)
	if err == nil && rec.LastSeenAt.Equal(seen) { // written in between: not ours to serve
		s.cache.drop(rec.Handle)
		return nil, false, nil
	}
	return rec, true, err
}

// loadBackend reads handle's record from the backend and caches it.
func (s *Store) loadBackend(ctx context.Context, handle string, now time.Time) (*Record, error) {
	seq := s.cache.snapshot()
	key := s.sessionKey(handle)
	raw, err := s.b.get(ctx, key)
	if errors.Is(err, errMissing) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec, err := s.keys.decodeRecord(handle, raw, true)
	if err != nil {
		s.log.Warn("session: unreadable record", "handle", handle, "err", err)
		return nil, ErrNotFound
	}
	if s.expired(rec, now) {
		if _, err := s.b.delMany(ctx, []string{key}); err != nil {
			s.log.Warn("session: delete expired", "handle", handle, "err", err)
		}
		s.cache.drop(handle)
		return nil, ErrNotFound
	}
	if now.Sub(rec.LastSeenAt) >= s.opts.TouchInterval {
		return s.touch(ctx, key, raw, rec, now)
	}
	if s.cache.fill(seq, rec, raw, now) {
		rec = rec.clone()
	}
	return rec, nil
}

// touch moves LastSeenAt to now and renews the TTL with a compare-and-set, so a concurrent
// Update (say, refreshed tokens) is never overwritten by this older copy. rec must be private
// to the caller; the result is too. On a conflict or a backend failure rec is returned
// unchanged (LastSeenAt not moved) and not cached.
func (s *Store) touch(ctx context.Context, key string, raw []byte, rec *Record, now time.Time) (*Record, error) {
	seq := s.cache.snapshot()
	seen := rec.LastSeenAt
	rec.LastSeenAt = now
	val, err := s.keys.encodeRecord(rec)
	if err != nil {
		return nil, err
	}
	res, err := s.b.cas(ctx, key, raw, val, s.ttlFor(rec, now))
	switch {
	case err != nil:
		s.log.Warn("session: touch failed", "handle", rec.Handle, "err", err)
		rec.LastSeenAt = seen
	case res == casMissing:
		s.cache.drop(rec.Handle)
		return nil, ErrNotFound
	case res == casMismatch:
		rec.LastSeenAt = seen
	default:
		if s.cache.fill(seq, rec, val, now) {
			rec = rec.clone()
		}
	}
	return rec, nil
}

// invalidate drops handles from this instance's cache and tells the others to do the same.
// Call it after the backend write that ended or changed those sessions.
func (s *Store) invalidate(ctx context.Context, handles ...string) {
	if len(handles) == 0 {
		return
	}
	s.cache.drop(handles...)
	if s.inval != nil {
		s.inval.publish(ctx, handles)
	}
}
