package assertion

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// backend stores the sealed keys. Every key carries the hash tag {assertion}, so a multi-key
// read works on Redis Cluster. Errors from a remote backend wrap ErrUnavailable.
type backend interface {
	getMany(ctx context.Context, keys []string) ([][]byte, error) // nil entry when absent
	setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
}

// redisBackend is the backend on a go-redis client (single node, Sentinel or Cluster).
type redisBackend struct {
	c redis.UniversalClient
}

func (r *redisBackend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: mget: %w", ErrUnavailable, err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

func (r *redisBackend) setNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	err := r.c.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: set: %w", ErrUnavailable, err)
	}
	return true, nil
}

// memoryBackend is the in-process backend, with expiry by the Signer's clock.
type memoryBackend struct {
	mu  sync.Mutex
	m   map[string]memEntry
	now func() time.Time
}

type memEntry struct {
	val []byte
	exp time.Time
}

func (m *memoryBackend) getMany(_ context.Context, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if e, ok := m.m[k]; ok && now.Before(e.exp) {
			out[i] = e.val
		}
	}
	return out, nil
}

func (m *memoryBackend) setNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, e := range m.m {
		if !now.Before(e.exp) {
			delete(m.m, k)
		}
	}
	if _, ok := m.m[key]; ok {
		return false, nil
	}
	m.m[key] = memEntry{val: val, exp: now.Add(ttl)}
	return true, nil
}
