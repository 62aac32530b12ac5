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
	value, n := cookieValue(r, name)
	if n != 1 {
		if n > 1 {
			s.log.Debug("session: several session cookies, ignoring all", "count", n)
		}
		return s.fresh(name), nil
	}
	id, h, ok := s.verifiedCookie(name, value)
	if !ok {
		return s.fresh(name), nil
	}
	now := s.now()
	rec, err := s.load(r.Context(), h, now)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return s.fresh(name), nil
		}
		return s.fresh(name), err
	}
	sess := s.fresh(name)
	sess.ID, sess.IsNew = id, false
	sess.Options.MaxAge = maxAgeSeconds(rec.ExpiresAt.Sub(now))
	SetRecord(sess, rec)
	return sess, nil
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

// load returns a private copy of the live record of the session named h, with its tokens,
// enforcing the timeouts and touching LastSeenAt at most every TouchInterval. ErrNotFound when
// there is no live session. now is Options.Now at the start of the request.
func (s *Store) load(ctx context.Context, h *[handleLen]byte, now time.Time) (*Record, error) {
	if e := s.cache.get(h[:], now); e != nil {
		if rec, ok, err := s.fromCache(ctx, e, now); ok {
			return rec, err
		}
	}
	return s.loadBackend(ctx, string(h[:]), now)
}

// fromCache serves a cached entry. ok is false when the backend must be read instead: the
// cached copy looks expired (only the backend may say so), was dropped meanwhile, or a touch
// found it outdated.
func (s *Store) fromCache(ctx context.Context, e *cacheEntry, now time.Time) (*Record, bool, error) {
	if s.expired(e.rec, now) {
		s.cache.drop(e.rec.Handle)
		return nil, false, nil
	}
	if now.Sub(e.rec.LastSeenAt) < s.opts.TouchInterval {
		return e.rec.clone(), true, nil
	}
	seq, ok := s.cache.snapshotFor(e)
	if !ok {
		return nil, false, nil
	}
	rec, touched, err := s.touch(ctx, s.sessionKey(e.rec.Handle), nil, e.tag, e.rec.clone(), now, seq)
	if err == nil && !touched { // written in between: not ours to serve
		s.cache.drop(e.rec.Handle)
		return nil, false, nil
	}
	return rec, true, err
}

// loadBackend reads handle's record from the backend and caches it. A format-1 record is
// rewritten as format 2 at once (so cached entries always have a format-2 record behind them).
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
	tag := tagOf(raw)
	if raw[0] != recordV2 || now.Sub(rec.LastSeenAt) >= s.opts.TouchInterval {
		if raw[0] == recordV2 {
			raw = nil // touched in place
		}
		rec, _, err = s.touch(ctx, key, raw, tag, rec, now, seq)
		return rec, err
	}
	if s.cache.fill(seq, rec, tag, now) {
		rec = rec.clone()
	}
	return rec, nil
}

// touch moves LastSeenAt to now and renews the TTL: in place (only the 8 bytes of LastSeenAt
// are written, if the stored record is still the write rec was read from: tag) or, with old (a
// format-1 record as read), by rewriting the whole record with a compare-and-set against old.
// Either way a concurrent Update (say, refreshed tokens) is never overwritten. rec must be
// private to the caller; the result is too. seq is the cache's invalidation count from before
// rec was read: a write since then (whose invalidation moved seq) keeps rec out of the cache.
// On a conflict or a backend failure rec is returned unchanged (touched false) and not cached.
func (s *Store) touch(ctx context.Context, key string, old []byte, tag uint32, rec *Record, now time.Time, seq uint64) (*Record, bool, error) {
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
			return nil, false, err
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
		return nil, false, ErrNotFound
	case res == casMismatch:
		rec.LastSeenAt = seen
	default:
		if s.cache.fill(seq, rec, tag, now) {
			rec = rec.clone()
		}
		return rec, true, nil
	}
	return rec, false, nil
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
