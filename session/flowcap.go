package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// countLua increments a counter and gives it a TTL when it has none (the first increment of
// a window, or a key left without one): every counter key expires.
const countLua = `local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

// CountFlow counts one more login flow started by the browser whose binding (e.g. the hash of
// the login-flow cookie) is given, and returns the number counted in the current window of
// ttl, which starts at the first count (a fixed window, shared by every instance on the same
// backend). The counter key holds only a hash of binding and always has a TTL. The caller
// decides the limit and must not count bindings it has just made up (each would be a key).
func (s *Store) CountFlow(ctx context.Context, binding string, ttl time.Duration) (int64, error) {
	if binding == "" || len(binding) > maxStateLen {
		return 0, errors.New("session: invalid flow binding")
	}
	if ttl <= 0 {
		ttl = DefaultFlowTTL
	}
	key := s.opts.KeyPrefix + "fb:{" + hashKey(binding) + "}"
	switch b := s.b.(type) {
	case *redisBackend:
		return b.count(ctx, key, ttl)
	case *memBackend:
		return b.count(key, ttl), nil
	}
	return 0, fmt.Errorf("session: backend %T cannot count", s.b)
}

func (r *redisBackend) count(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := redis.NewScript(countLua).Run(ctx, r.c, []string{key}, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, unavailable("count", err)
	}
	return n, nil
}

// count keeps the counter as a decimal string value, like Redis INCR does.
func (m *memBackend) count(key string, ttl time.Duration) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.str(key)
	var n int64
	if ok {
		_, _ = fmt.Sscan(string(v.val), &n)
	} else {
		v.exp = m.now().Add(ttl)
	}
	n++
	m.strs[key] = memStr{val: fmt.Appendf(nil, "%d", n), exp: v.exp}
	m.wrote()
	return n
}
