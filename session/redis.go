package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// errMissing is a backend's "no such key"; the Store turns it into ErrNotFound or a new session.
var errMissing = errors.New("session: key missing")

type setMode int

const (
	setAlways setMode = iota
	setNX             // only if absent (new session, new flow, lock)
	setXX             // only if present (never resurrect a revoked session)
)

// casResult is the outcome of a compare-and-set.
type casResult int

const (
	casDone     casResult = iota // value replaced
	casMismatch                  // someone wrote in between: leave their value
	casMissing                   // key gone (revoked or expired)
)

// backend is the storage the Store needs. Every key holds its own hash tag and every command
// touches one key (or pipelines single-key commands), so Redis Cluster works. Errors from a
// remote backend wrap ErrUnavailable.
type backend interface {
	get(ctx context.Context, key string) ([]byte, error) // errMissing when absent
	set(ctx context.Context, key string, val []byte, ttl time.Duration, mode setMode) (bool, error)
	cas(ctx context.Context, key string, old, val []byte, ttl time.Duration) (casResult, error)
	getDel(ctx context.Context, key string) ([]byte, error) // errMissing when absent
	delIfEqual(ctx context.Context, key string, val []byte) error
	getMany(ctx context.Context, keys []string) ([][]byte, error) // nil entry when absent
	delMany(ctx context.Context, keys []string) (int, error)
	// touch rewrites LastSeenAt of a format-2 record in place and sets its TTL, if the record
	// is format 2 with the tag of head (the first v2Header bytes of the new encoding):
	// casDone; casMismatch when it is not; casMissing when the key is gone.
	touch(ctx context.Context, key string, head []byte, ttl time.Duration) (casResult, error)
	// Indexes (index.go): add member to every index of idx, to stay until exp; remove members
	// from one; list the members of one (with those of its legacy set).
	addToIndexes(ctx context.Context, idx []index, member string, exp time.Time, ttl time.Duration) error
	removeFromIndex(ctx context.Context, idx index, members ...string) error
	members(ctx context.Context, idx index) ([]string, error)
	// pruneIndexes drops the entries past their exp from the buckets of idx (best effort).
	pruneIndexes(ctx context.Context, idx []index, now time.Time) error
	scanPrefix(ctx context.Context, prefix string, limit int) ([]string, error)
	ping(ctx context.Context) error
}

const casLua = `local v = redis.call('GET', KEYS[1])
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

// touchLua: KEYS[1] the record, ARGV[1] the new header (version, LastSeenAt, tag), ARGV[2]
// the TTL in milliseconds. Only LastSeenAt (bytes 1-8) is written, in place, and only while
// the stored record has the same version and tag.
const touchLua = `local h = redis.call('GETRANGE', KEYS[1], 0, 12)
if h == '' then return -1 end
if string.sub(h, 1, 1) ~= string.sub(ARGV[1], 1, 1) or string.sub(h, 10, 13) ~= string.sub(ARGV[1], 10, 13) then return 0 end
redis.call('SETRANGE', KEYS[1], 1, string.sub(ARGV[1], 2, 9))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`

const delIfEqualLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// redisBackend runs every call under its own timeout; go-redis reconnects by itself, so a
// Redis that comes back just works.
type redisBackend struct {
	c           redis.UniversalClient
	timeout     time.Duration
	casScript   *redis.Script
	touchScript *redis.Script
	delScript   *redis.Script
	pruneScript *redis.Script
}

func newRedisBackend(c redis.UniversalClient, timeout time.Duration) *redisBackend {
	return &redisBackend{c: c, timeout: timeout,
		casScript: redis.NewScript(casLua), touchScript: redis.NewScript(touchLua),
		delScript: redis.NewScript(delIfEqualLua), pruneScript: redis.NewScript(pruneLua)}
}

// errReplicaReads refuses a Cluster client that may read from replicas.
var errReplicaReads = errors.New("session: a Redis Cluster client must read from masters only " +
	"(read_only, route_by_latency and route_randomly serve revoked sessions from lagging replicas)")

// checkClient refuses clients the Store cannot be correct on: a Cluster client that routes
// reads to replicas could load a session (or a login flow, a lock) that was already revoked
// (or taken, or released) on the master, and cache it again after the invalidation.
func checkClient(c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		if o := cc.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return errReplicaReads
		}
	}
	return nil
}

func (r *redisBackend) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

func (r *redisBackend) get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	b, err := r.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errMissing
	}
	if err != nil {
		return nil, unavailable("get", err)
	}
	return b, nil
}

func (r *redisBackend) set(ctx context.Context, key string, val []byte, ttl time.Duration, mode setMode) (bool, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	var (
		ok  = true
		err error
	)
	switch mode {
	case setNX:
		ok, err = r.c.SetNX(ctx, key, val, ttl).Result()
	case setXX:
		ok, err = r.c.SetXX(ctx, key, val, ttl).Result()
	default:
		err = r.c.Set(ctx, key, val, ttl).Err()
	}
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("set", err)
	}
	return ok, nil
}

func (r *redisBackend) cas(ctx context.Context, key string, old, val []byte, ttl time.Duration) (casResult, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := r.casScript.Run(ctx, r.c, []string{key}, old, val, ttl.Milliseconds()).Int()
	if err != nil {
		return casMismatch, unavailable("cas", err)
	}
	return casResultOf(n), nil
}

// casResultOf reads the reply of casLua and touchLua: 1 done, -1 no such key, else mismatch.
func casResultOf(n int) casResult {
	switch n {
	case 1:
		return casDone
	case -1:
		return casMissing
	}
	return casMismatch
}

func (r *redisBackend) touch(ctx context.Context, key string, head []byte, ttl time.Duration) (casResult, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := r.touchScript.Run(ctx, r.c, []string{key}, head, ttl.Milliseconds()).Int()
	if err != nil {
		return casMismatch, unavailable("touch", err)
	}
	return casResultOf(n), nil
}

func (r *redisBackend) getDel(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	b, err := r.c.GetDel(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errMissing
	}
	if err != nil {
		return nil, unavailable("getdel", err)
	}
	return b, nil
}

func (r *redisBackend) delIfEqual(ctx context.Context, key string, val []byte) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.delScript.Run(ctx, r.c, []string{key}, val).Err(); err != nil {
		return unavailable("del", err)
	}
	return nil
}

func (r *redisBackend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(keys))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error { // per-command errors checked below
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	out := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, unavailable("get", err)
		default:
			out[i] = b
		}
	}
	return out, nil
}

func (r *redisBackend) delMany(ctx context.Context, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(keys))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Del(ctx, k) // one key per command: keys live in different slots
		}
		return nil
	})
	n := 0
	for _, c := range cmds {
		d, err := c.Result()
		if err != nil {
			return n, unavailable("del", err)
		}
		n += int(d)
	}
	return n, nil
}

// maxScanCalls bounds one listing: SCAN with COUNT 100 this many times per node at most.
const maxScanCalls = 200

func (r *redisBackend) scanPrefix(ctx context.Context, prefix string, limit int) ([]string, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	match := globEscape(prefix) + "*"
	var (
		mu  sync.Mutex
		out []string
	)
	scanNode := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for range maxScanCalls {
			keys, next, err := c.Scan(ctx, cursor, match, 100).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, keys...)
			full := len(out) >= limit
			mu.Unlock()
			if full || next == 0 {
				return nil
			}
			cursor = next
		}
		return nil
	}
	var err error
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scanNode(ctx, c) })
	} else {
		err = scanNode(ctx, r.c)
	}
	if err != nil {
		return nil, unavailable("scan", err)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (r *redisBackend) ping(ctx context.Context) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// globEscape quotes the SCAN MATCH metacharacters of a literal prefix.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
