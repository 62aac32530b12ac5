package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
	id, rec, shared, err := s.lookupCookie(r, name)
	if rec == nil {
		return s.fresh(name), err
	}
	if shared {
		rec = rec.clone()
	}
	sess := s.fresh(name)
	sess.ID, sess.IsNew = id, false
	sess.Options.MaxAge = maxAgeSeconds(rec.ExpiresAt.Sub(s.now()))
	SetRecord(sess, rec)
	return sess, nil
}

// Load is Get for a caller that only reads the record (the gateway's request path): the live
// session's record, or nil when there is none (same rules as Get: a missing, malformed,
// forged, expired or revoked cookie, or more than one). err wraps ErrUnavailable when the
// backend failed (the caller must fail closed); the record is then nil. name "" means
// CookieName.
//
// The record may be the one in the session cache, shared with concurrent requests: the
// caller must not modify it, nor the arrays of its Roles and Groups (Clone it first). It stays
// valid (and unchanged) for as long as the caller holds it; a later Load of the same session
// may return another record.
func (s *Store) Load(r *http.Request, name string) (*Record, error) {
	_, rec, _, err := s.lookupCookie(r, s.name(name))
	return rec, err
}

// lookupCookie finds the live record named by the request's cookie name: its session id, the
// record (nil when there is none, or with an error on a backend failure) and whether the record
// is shared with the cache (read-only).
func (s *Store) lookupCookie(r *http.Request, name string) (id string, rec *Record, shared bool, err error) {
	value, n := cookieValue(r, name)
	if n != 1 {
		if n > 1 {
			s.log.Debug("session: several session cookies, ignoring all", "count", n)
		}
		return "", nil, false, nil
	}
	id, h, ok := s.verifiedCookie(name, value)
	if !ok {
		return "", nil, false, nil
	}
	rec, shared, err = s.load(r.Context(), h, s.now())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
		return "", nil, false, err
	}
	return id, rec, shared, nil
}

// verifiedCookie returns the session id in a cookie value and its handle, from the memo of
// values verified before or by checking the value's MAC (and remembering it).
func (s *Store) verifiedCookie(name, value string) (string, *[handleLen]byte, bool) {
	if e := s.memo.get(name, value); e != nil {
		return e.id, &e.handle, true
	}
	id, date, ok := s.keys.decodeCookieDate(name, value)
	if !ok {
		return "", nil, false
	}
	e := &memoEntry{name: name, value: strings.Clone(value), id: id, notAfter: date + int64(s.keys.cookieMaxAge)}
	putHandle(&e.handle, id)
	s.memo.put(e)
	return e.id, &e.handle, true
}

// load returns the live record of the session named h, with its tokens, enforcing the
// timeouts and touching LastSeenAt at most every TouchInterval. ErrNotFound when there is no
// live session. now is Options.Now at the start of the request. shared reports that the
// record is owned by the cache (read-only: clone it before any change); otherwise it is the
// caller's.
func (s *Store) load(ctx context.Context, h *[handleLen]byte, now time.Time) (rec *Record, shared bool, err error) {
	if e := s.cache.get(h[:], now); e != nil {
		if rec, shared, ok, err := s.fromCache(ctx, e, now); ok {
			return rec, shared, err
		}
	}
	return s.loadBackend(ctx, string(h[:]), now)
}

// fromCache serves a cached entry. ok is false when the backend must be read instead: the
// cached copy looks expired (only the backend may say so), was dropped meanwhile, or a touch
// found it outdated.
func (s *Store) fromCache(ctx context.Context, e *cacheEntry, now time.Time) (rec *Record, shared, ok bool, err error) {
	if s.expired(e.rec, now) {
		s.cache.drop(e.rec.Handle)
		return nil, false, false, nil
	}
	if now.Sub(e.rec.LastSeenAt) < s.opts.TouchInterval {
		return e.rec, true, true, nil
	}
	seq, ok := s.cache.snapshotFor(e)
	if !ok {
		return nil, false, false, nil
	}
	rec, shared, touched, err := s.touch(ctx, s.sessionKey(e.rec.Handle), nil, e.tag, e.rec.clone(), now, seq)
	if err == nil && !touched { // written in between: not ours to serve
		s.cache.drop(e.rec.Handle)
		return nil, false, false, nil
	}
	return rec, shared, true, err
}

// loadBackend reads handle's record from the backend and caches it. A format-1 record is
// rewritten as format 2 at once (so cached entries always have a format-2 record behind them).
// shared as for load.
func (s *Store) loadBackend(ctx context.Context, handle string, now time.Time) (*Record, bool, error) {
	seq := s.cache.snapshot()
	key := s.sessionKey(handle)
	raw, err := s.b.get(ctx, key)
	if errors.Is(err, errMissing) {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, err
	}
	rec, err := s.keys.decodeRecord(handle, raw, true)
	if err != nil {
		s.log.Warn("session: unreadable record", "handle", handle, "err", err)
		return nil, false, ErrNotFound
	}
	if s.expired(rec, now) {
		if _, err := s.b.delMany(ctx, []string{key}); err != nil {
			s.log.Warn("session: delete expired", "handle", handle, "err", err)
		}
		s.cache.drop(handle)
		return nil, false, ErrNotFound
	}
	tag := tagOf(raw)
	if raw[0] != recordV2 || now.Sub(rec.LastSeenAt) >= s.opts.TouchInterval {
		if raw[0] == recordV2 {
			raw = nil // touched in place
		}
		rec, shared, _, err := s.touch(ctx, key, raw, tag, rec, now, seq)
		return rec, shared, err
	}
	return rec, s.cache.fill(seq, rec, tag, now), nil
}

// touch moves LastSeenAt to now and renews the TTL: in place (only the 8 bytes of LastSeenAt
// are written, if the stored record is still the write rec was read from: tag) or, with old (a
// format-1 record as read), by rewriting the whole record with a compare-and-set against old.
// Either way a concurrent Update (say, refreshed tokens) is never overwritten. rec must be
// private to the caller; the result is shared with the cache when shared is true (then
// read-only), else private too. seq is the cache's invalidation count from before
// rec was read: a write since then (whose invalidation moved seq) keeps rec out of the cache.
// On a conflict or a backend failure rec is returned unchanged (touched false) and not cached.
func (s *Store) touch(ctx context.Context, key string, old []byte, tag uint32, rec *Record, now time.Time, seq uint64) (_ *Record, shared, touched bool, _ error) {
	seen := rec.LastSeenAt
	rec.LastSeenAt = storedTime(now)
	var (
		res casResult
		err error
	)
	if old != nil {
		tag = newTag()
		rec.CreatedAt, rec.ExpiresAt, rec.TokenExpiry = storedTime(rec.CreatedAt), storedTime(rec.ExpiresAt), storedTime(rec.TokenExpiry)
		var val []byte
		if val, err = s.keys.encodeRecord(rec, tag); err != nil {
			rec.LastSeenAt = seen
			return nil, false, false, err
		}
		res, err = s.b.cas(ctx, key, old, val, s.ttlFor(rec, now))
	} else {
		var head [v2Header]byte
		res, err = s.b.touch(ctx, key, appendTouchHeader(head[:0], rec, tag), s.ttlFor(rec, now))
	}
	switch {
	case err != nil:
		s.log.Warn("session: touch failed", "handle", rec.Handle, "err", err)
		rec.LastSeenAt = seen
	case res == casMissing:
		s.cache.drop(rec.Handle)
		return nil, false, false, ErrNotFound
	case res == casMismatch:
		rec.LastSeenAt = seen
	default:
		return rec, s.cache.fill(seq, rec, tag, now), true, nil
	}
	return rec, false, false, nil
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
