// Package session is authgate's server-side session store: a gorilla/sessions Store whose
// cookie carries only a signed random id, while the session record (identity, tokens sealed
// with AES-256-GCM, timestamps) lives in Redis, or in process memory for the demo and tests.
// It also keeps single-use login flows (state -> Flow).
//
// The caller builds one Store at start-up (NewRedis or NewMemory) and shares it. It must:
// create a session with New (never reuse Get's) at every login and Revoke the previous one;
// treat an error wrapping ErrUnavailable as "fail closed" (503); never log a Record, a cookie
// value or a session id; call Close at shutdown, before closing the Redis client. Only the
// *Record (RecordKey) of Session.Values is persisted.
package session

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable wraps every backend failure (Redis down, timeout). The gateway answers 503
// and does not let the request through; go-redis reconnects by itself when Redis returns.
var ErrUnavailable = errors.New("session: store unavailable")

// ErrNotFound means the session or flow does not exist: never made, expired, revoked, taken.
var ErrNotFound = errors.New("session: not found")

// Defaults applied by NewRedis and NewMemory to zero Options fields.
const (
	DefaultCookieName      = "__Host-authgate"
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultTouchInterval   = 5 * time.Minute
	DefaultKeyPrefix       = "authgate:"
	DefaultOpTimeout       = 2 * time.Second
	DefaultCacheTTL        = time.Second
	DefaultCacheSize       = 1000
)

// Options configures a Store. Secrets is required; every other zero field gets its default.
type Options struct {
	CookieName   string        // default DefaultCookieName; "__Host-" requires Secure and no CookieDomain
	CookieDomain string        // empty = host-only cookie (recommended)
	SameSite     http.SameSite // default Lax; None requires Secure
	Secure       bool          // the cookie is always HttpOnly with Path "/"

	// Secrets, each at least 32 bytes: the first signs cookies and seals tokens, all verify and
	// open (rotation: put the new secret first and keep the old one listed until its sessions
	// have expired). Separate cookie-HMAC and AEAD keys are derived from each with HKDF.
	Secrets [][]byte

	IdleTimeout     time.Duration // default 30m
	AbsoluteTimeout time.Duration // default 12h
	// TouchInterval: LastSeenAt and the TTL are rewritten at most this often, so most requests
	// cost one Redis read. Default 5m, capped at IdleTimeout/2. An idle session therefore ends
	// between IdleTimeout-TouchInterval and IdleTimeout after its last request.
	TouchInterval time.Duration
	KeyPrefix     string        // default "authgate:"; must not contain '{' or '}'
	OpTimeout     time.Duration // per backend call, default 2s

	// CacheTTL: a Redis store serves a session read from Redis within the last CacheTTL from
	// an in-process cache, without a round trip. Revocations and updates reach every
	// instance's cache through Redis pub/sub (channel <KeyPrefix>inval) at once; while that
	// subscription is down the cache is bypassed; and no entry is ever served after CacheTTL.
	// So a revocation reaches every instance within milliseconds, within 750ms when a
	// subscription breaks, and within CacheTTL at worst (a PUBLISH lost after its DEL). Idle
	// and absolute timeouts are checked on cached records too. Default 1s (so even that worst
	// case meets "revoked everywhere within a second"); negative disables the cache
	// (the Store still publishes invalidations for other instances). NewMemory has no cache.
	CacheTTL time.Duration
	// CacheSize bounds the cache in entries (a random one is evicted when full). Default
	// 1000 (about 2.5 KB each with typical tokens, so about 2.5 MB); negative disables the
	// cache. It also bounds the memo of verified cookie values (about 300 B each; default size
	// when the cache is disabled), which lets a request skip the cookie's HMAC check and
	// needs no invalidation: it only remembers that a value's signature verified.
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger // default discards
}

// Store is the session and login-flow store. It implements sessions.Store and is safe for
// concurrent use. Build it with NewRedis or NewMemory.
type Store struct {
	opts  Options
	keys  keys
	b     backend
	log   *slog.Logger
	cache *cache       // nil: no cache (memory store, or disabled)
	inval *invalidator // nil: memory store
	memo  *cookieMemo  // verified cookie values
}

var _ sessions.Store = (*Store)(nil)

// NewRedis returns a Store on client (single node, Sentinel or Cluster; a Cluster client that
// reads from replicas is refused, see checkClient) and starts the
// invalidation subscription of its session cache (see Options.CacheTTL), which holds one
// connection of client. The caller owns the client: it configures its pool and timeouts, calls
// Store.Close when the Store is no longer used, then closes the client.
func NewRedis(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("session: nil redis client")
	}
	if err := checkClient(client); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := newStore(o, newRedisBackend(client, o.OpTimeout))
	if err != nil {
		return nil, err
	}
	s.cache = newCache(o.CacheTTL, o.CacheSize)
	s.inval = newInvalidator(client, o.KeyPrefix+"inval", o.OpTimeout, s.cache, o.Logger)
	return s, nil
}

// Close stops the cache's invalidation subscription; from then on Get reads Redis every time.
// It does not close the Redis client. A memory Store has nothing to close. Safe to call more
// than once.
func (s *Store) Close() error {
	if s.inval == nil {
		return nil
	}
	return s.inval.close()
}

// NewMemory returns a Store that keeps everything in this process, with the same semantics
// (TTL expiry by Options.Now, indexes, single-use flows). For the demo and tests only:
// sessions are lost on restart and not shared between instances.
func NewMemory(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return newStore(o, newMemBackend(o.Now))
}

func newStore(o Options, b backend) (*Store, error) {
	maxAge := int((o.AbsoluteTimeout+time.Second-1)/time.Second) + 60
	k, err := deriveKeys(o.Secrets, maxAge)
	if err != nil {
		return nil, err
	}
	memoSize := o.CacheSize
	if memoSize <= 0 {
		memoSize = DefaultCacheSize
	}
	return &Store{opts: o, keys: k, b: b, log: o.Logger, memo: newCookieMemo(memoSize)}, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.CookieName == "" {
		o.CookieName = DefaultCookieName
	}
	if o.SameSite == 0 {
		o.SameSite = http.SameSiteLaxMode
	}
	setDefault(&o.IdleTimeout, DefaultIdleTimeout)
	setDefault(&o.AbsoluteTimeout, DefaultAbsoluteTimeout)
	setDefault(&o.TouchInterval, DefaultTouchInterval)
	setDefault(&o.OpTimeout, DefaultOpTimeout)
	setDefault(&o.CacheTTL, DefaultCacheTTL)
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.TouchInterval > o.IdleTimeout/2 {
		o.TouchInterval = o.IdleTimeout / 2
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, o.validate()
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (o Options) validate() error {
	var errs []error
	if (&http.Cookie{Name: o.CookieName, Value: "x"}).Valid() != nil {
		errs = append(errs, fmt.Errorf("session: invalid cookie name %q", o.CookieName))
	}
	if strings.HasPrefix(o.CookieName, "__Host-") && (!o.Secure || o.CookieDomain != "") {
		errs = append(errs, errors.New("session: a __Host- cookie needs Secure and no CookieDomain"))
	}
	if strings.HasPrefix(o.CookieName, "__Secure-") && !o.Secure {
		errs = append(errs, errors.New("session: a __Secure- cookie needs Secure"))
	}
	if o.SameSite == http.SameSiteNoneMode && !o.Secure {
		errs = append(errs, errors.New("session: SameSite=None needs Secure"))
	}
	if o.IdleTimeout < 0 || o.AbsoluteTimeout < 0 || o.TouchInterval < 0 || o.OpTimeout < 0 {
		errs = append(errs, errors.New("session: timeouts must not be negative"))
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		errs = append(errs, errors.New("session: KeyPrefix must not contain '{' or '}'"))
	}
	return errors.Join(errs...)
}

// CookieName is the configured session cookie name, to pass to Get and New.
func (s *Store) CookieName() string { return s.opts.CookieName }

func (s *Store) now() time.Time { return s.opts.Now() }

func (s *Store) sessionKey(handle string) string { return s.opts.KeyPrefix + "s:{" + handle + "}" }

func (s *Store) name(name string) string {
	if name == "" {
		return s.opts.CookieName
	}
	return name
}

// fresh is a new, empty session: IsNew, no ID, cookie options of the store.
func (s *Store) fresh(name string) *sessions.Session {
	sess := sessions.NewSession(s, s.name(name)) // Options is a fresh zero value: fill it in place
	sess.IsNew = true
	s.setCookieOptions(sess.Options, int(s.opts.AbsoluteTimeout/time.Second))
	return sess
}

func (s *Store) cookieOptions(maxAge int) *sessions.Options {
	o := new(sessions.Options)
	s.setCookieOptions(o, maxAge)
	return o
}

func (s *Store) setCookieOptions(o *sessions.Options, maxAge int) {
	*o = sessions.Options{Path: "/", Domain: s.opts.CookieDomain, MaxAge: maxAge,
		Secure: s.opts.Secure, HttpOnly: true, SameSite: s.opts.SameSite}
}

// New returns a fresh, empty session (IsNew, ID ""). It never adopts the id of an incoming
// cookie, so a login that saves it gets a new id (no fixation). name "" means CookieName.
func (s *Store) New(_ *http.Request, name string) (*sessions.Session, error) {
	return s.fresh(name), nil
}

func maxAgeSeconds(d time.Duration) int {
	if n := int(d / time.Second); n > 0 {
		return n
	}
	return 1
}

// Save persists the session's *Record and sets the cookie; other Values are not stored.
//
// ID "" creates a new session (32 random bytes); otherwise the existing record is rewritten
// and ErrNotFound is returned if it was revoked meanwhile (it is never resurrected).
// CreatedAt defaults to now, ExpiresAt to CreatedAt+AbsoluteTimeout (never later), LastSeenAt
// is set to now; the backend TTL is min(idle, remaining absolute) and the cookie's Max-Age is
// the remaining absolute lifetime. The record's times are floored to the millisecond, as
// they are stored. Options.MaxAge < 0 deletes the record and expires the
// cookie. Errors wrap ErrUnavailable when the backend fails; then no cookie is set.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx, name := r.Context(), s.name(sess.Name())
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		s.clearCookie(w, name)
		if !validID(sess.ID) {
			return nil
		}
		err := s.Revoke(ctx, handleOf(sess.ID))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	rec := RecordFrom(sess)
	if rec == nil {
		return errors.New("session: Save of a session without a Record")
	}
	mode := setXX
	if sess.ID == "" {
		id, err := newID()
		if err != nil {
			return err
		}
		sess.ID, mode = id, setNX
	} else if !validID(sess.ID) {
		return errors.New("session: Save of a session with a foreign id")
	}
	now := s.now()
	rec.Handle, rec.LastSeenAt = handleOf(sess.ID), now
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	if limit := rec.CreatedAt.Add(s.opts.AbsoluteTimeout); rec.ExpiresAt.IsZero() || rec.ExpiresAt.After(limit) {
		rec.ExpiresAt = limit
	}
	if err := s.write(ctx, rec, mode); err != nil {
		return err
	}
	value, err := s.keys.encodeCookie(name, sess.ID)
	if err != nil {
		return err
	}
	sess.IsNew = false
	sess.Options = s.cookieOptions(maxAgeSeconds(rec.ExpiresAt.Sub(now)))
	http.SetCookie(w, s.cookie(name, value, sess.Options.MaxAge))
	return nil
}

func (s *Store) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", Domain: s.opts.CookieDomain,
		MaxAge: maxAge, Secure: s.opts.Secure, HttpOnly: true, SameSite: s.opts.SameSite}
}

// ClearCookie writes an expiring Set-Cookie for the session cookie (same name, path, domain
// and attributes). It does not delete the record: call Revoke (or Save with MaxAge < 0) too.
func (s *Store) ClearCookie(w http.ResponseWriter) { s.clearCookie(w, s.opts.CookieName) }

func (s *Store) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, s.cookie(name, "", -1))
}
