package session

import (
	"sync"
	"sync/atomic"
	"time"
)

// cache keeps recently loaded session records in process, keyed by handle, so a Get served
// within CacheTTL of a backend read skips Redis. It is only trusted while the invalidation
// subscription is known to be healthy (see invalidator): otherwise every lookup misses.
//
// Entries are immutable: Get hands out copies, Load the cached record itself (read-only).
// A nil *cache is a disabled cache.
type cache struct {
	ttl  time.Duration
	size int
	mono func() time.Duration // monotonic clock for health, injectable in tests

	mu sync.RWMutex
	m  map[string]*cacheEntry
	// seq counts invalidations. A loader takes it before reading the backend and fills only if
	// it has not moved, so a record read before a revocation is never cached after it.
	seq uint64 // guarded by mu

	healthyUntil atomic.Int64 // mono() nanoseconds; lookups miss past it
}

// cacheEntry holds one decoded record, about once: its strings are cut from one copy of the
// stored metadata and its tokens from one string (see decodeRecord); the stored bytes and the
// sealed blob are not kept.
type cacheEntry struct {
	rec *Record   // never modified once cached
	tag uint32    // write tag of the stored record (format 2), for the in-place touch
	at  time.Time // when read from the backend (Options.Now)
}

// newCache returns a cache, or nil (disabled) when ttl or size is not positive.
func newCache(ttl time.Duration, size int) *cache {
	if ttl <= 0 || size <= 0 {
		return nil
	}
	start := time.Now()
	return &cache{ttl: ttl, size: size, m: make(map[string]*cacheEntry, min(size, 1024)),
		mono: func() time.Duration { return time.Since(start) }}
}

// healthy reports whether invalidations are being received right now.
func (c *cache) healthy() bool {
	return int64(c.mono()) < c.healthyUntil.Load()
}

// markHealthy trusts the cache for d from now (a frame arrived on the subscription).
func (c *cache) markHealthy(d time.Duration) {
	if c != nil {
		c.healthyUntil.Store(int64(c.mono() + d))
	}
}

// markUnhealthy stops serving from the cache until the next markHealthy.
func (c *cache) markUnhealthy() {
	if c != nil {
		c.healthyUntil.Store(0)
	}
}

// get returns the entry of handle if it is fresh (read within ttl of now) and the cache is
// healthy; nil otherwise. handle is a byte slice so a stack buffer can be used without a copy.
func (c *cache) get(handle []byte, now time.Time) *cacheEntry {
	if c == nil || !c.healthy() {
		return nil
	}
	c.mu.RLock()
	e := c.m[string(handle)]
	c.mu.RUnlock()
	if e == nil || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		return nil
	}
	return e
}

// snapshot is the invalidation count to pass to fill.
func (c *cache) snapshot() uint64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq
}

// snapshotFor is snapshot while e is still the entry of its handle; ok is false when it was
// replaced or dropped since it was looked up.
func (c *cache) snapshotFor(e *cacheEntry) (seq uint64, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq, c.m[e.rec.Handle] == e
}

// fill caches rec (which the cache then owns: the caller must not modify it) unless an
// invalidation happened since seq was taken or the cache is not healthy. It reports whether rec
// was taken. When full, a random entry is evicted (Go map order).
func (c *cache) fill(seq uint64, rec *Record, tag uint32, at time.Time) bool {
	if c == nil || !c.healthy() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		return false
	}
	if _, ok := c.m[rec.Handle]; !ok && len(c.m) >= c.size {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[rec.Handle] = &cacheEntry{rec: rec, tag: tag, at: at}
	return true
}

// drop removes handles and voids in-flight fills.
func (c *cache) drop(handles ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range handles {
		delete(c.m, h)
	}
	c.seq++
}

// reset empties the cache and voids in-flight fills (after a (re)subscription: invalidations
// sent while it was down are lost).
func (c *cache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.seq++
}

// len is the number of entries (tests and metrics).
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// clone returns a copy of r that shares nothing mutable with it (strings are immutable; the
// role and group slices are copied into one new array).
func (r *Record) clone() *Record {
	c := *r
	if n := len(r.Roles) + len(r.Groups); n > 0 {
		all := make([]string, n)
		copy(all, r.Roles)
		copy(all[len(r.Roles):], r.Groups)
		if len(r.Roles) > 0 {
			c.Roles = all[:len(r.Roles):len(r.Roles)]
		}
		if len(r.Groups) > 0 {
			c.Groups = all[len(r.Roles):]
		}
	}
	return &c
}
