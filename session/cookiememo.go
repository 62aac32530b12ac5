package session

import (
	"hash/maphash"
	"sync"
	"time"
)

// cookieMemo remembers cookie values whose MAC verified, so a request with a value seen before
// skips the HMAC check, the base64 decoding and the SHA-256 of the handle. It holds only what
// decodeCookie would compute again from the same value with the same secrets, so it needs no
// invalidation: a revoked session is refused by the session lookup, as before. Entries end
// with the value's max age (the same check decodeCookie makes) and, when the memo is full, at
// random. Values are found by a keyed (per-process random seed) 64-bit hash and then compared
// in full, in constant time. A nil *cookieMemo remembers nothing.
type cookieMemo struct {
	size int
	seed maphash.Seed
	now  func() time.Time // wall clock, as decodeCookie's max-age check

	mu sync.RWMutex
	m  map[uint64]*memoEntry
}

// memoEntry is one verified cookie value; never modified once stored.
type memoEntry struct {
	name, value string // cookie name and value (the MAC covers both)
	id          string
	handle      [handleLen]byte
	notAfter    int64 // Unix seconds: signing time + max age
}

func newCookieMemo(size int) *cookieMemo {
	if size <= 0 {
		return nil
	}
	return &cookieMemo{size: size, seed: maphash.MakeSeed(), now: time.Now,
		m: make(map[uint64]*memoEntry, min(size, 1024))}
}

// get returns the entry of (name, value) if value verified before and is within its max age.
func (c *cookieMemo) get(name, value string) *memoEntry {
	if c == nil {
		return nil
	}
	h := maphash.String(c.seed, value)
	c.mu.RLock()
	e := c.m[h]
	c.mu.RUnlock()
	if e == nil || e.name != name || !constantTimeEqual(e.value, value) || c.now().Unix() > e.notAfter {
		return nil
	}
	return e
}

// put remembers e (whose value verified), evicting a random entry when full.
func (c *cookieMemo) put(e *memoEntry) {
	if c == nil {
		return
	}
	h := maphash.String(c.seed, e.value)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.size {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[h] = e
}

// len is the number of entries (tests).
func (c *cookieMemo) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// constantTimeEqual compares a and b in time that depends on their lengths only.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
