package session

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// memBackend keeps keys in process with the same semantics as Redis (TTL by the injected
// clock, NX/XX, GETDEL, in-place touch; a set per index lookup). Expired keys are dropped when
// touched and by a sweep every sweepEvery writes.
type memBackend struct {
	now    func() time.Time
	mu     sync.Mutex
	strs   map[string]memStr
	sets   map[string]memSet
	writes int
}

type memStr struct {
	val []byte
	exp time.Time
}

type memSet struct {
	m   map[string]struct{}
	exp time.Time
}

const sweepEvery = 1024

func newMemBackend(now func() time.Time) *memBackend {
	return &memBackend{now: now, strs: map[string]memStr{}, sets: map[string]memSet{}}
}

// str returns the live value of key; the caller holds mu.
func (m *memBackend) str(key string) (memStr, bool) {
	v, ok := m.strs[key]
	if ok && !m.now().Before(v.exp) {
		delete(m.strs, key)
		return memStr{}, false
	}
	return v, ok
}

// liveSet returns the live set of key; the caller holds mu.
func (m *memBackend) liveSet(key string) (memSet, bool) {
	v, ok := m.sets[key]
	if ok && !m.now().Before(v.exp) {
		delete(m.sets, key)
		return memSet{}, false
	}
	return v, ok
}

// wrote counts a write and sweeps expired keys now and then; the caller holds mu.
func (m *memBackend) wrote() {
	m.writes++
	if m.writes%sweepEvery != 0 {
		return
	}
	now := m.now()
	for k, v := range m.strs {
		if !now.Before(v.exp) {
			delete(m.strs, k)
		}
	}
	for k, v := range m.sets {
		if !now.Before(v.exp) {
			delete(m.sets, k)
		}
	}
}

func (m *memBackend) get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.str(key)
	if !ok {
		return nil, errMissing
	}
	return bytes.Clone(v.val), nil
}

func (m *memBackend) set(_ context.Context, key string, val []byte, ttl time.Duration, mode setMode) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, exists := m.str(key)
	if (mode == setNX && exists) || (mode == setXX && !exists) {
		return false, nil
	}
	m.strs[key] = memStr{val: bytes.Clone(val), exp: m.now().Add(ttl)}
	m.wrote()
	return true, nil
}

func (m *memBackend) cas(_ context.Context, key string, old, val []byte, ttl time.Duration) (casResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.str(key)
	if !ok {
		return casMissing, nil
	}
	if !bytes.Equal(v.val, old) {
		return casMismatch, nil
	}
	m.strs[key] = memStr{val: bytes.Clone(val), exp: m.now().Add(ttl)}
	m.wrote()
	return casDone, nil
}

func (m *memBackend) touch(_ context.Context, key string, head []byte, ttl time.Duration) (casResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.str(key)
	if !ok {
		return casMissing, nil
	}
	if len(v.val) < v2Header || v.val[0] != head[0] || !bytes.Equal(v.val[v2Tag:v2Header], head[v2Tag:v2Header]) {
		return casMismatch, nil
	}
	val := bytes.Clone(v.val) // values handed out by getDel are not copies
	copy(val[v2LastSeenAt:v2Tag], head[v2LastSeenAt:v2Tag])
	m.strs[key] = memStr{val: val, exp: m.now().Add(ttl)}
	m.wrote()
	return casDone, nil
}

func (m *memBackend) getDel(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.str(key)
	if !ok {
		return nil, errMissing
	}
	delete(m.strs, key)
	return v.val, nil
}

func (m *memBackend) delIfEqual(_ context.Context, key string, val []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.str(key); ok && bytes.Equal(v.val, val) {
		delete(m.strs, key)
	}
	return nil
}

func (m *memBackend) getMany(_ context.Context, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if v, ok := m.str(k); ok {
			out[i] = bytes.Clone(v.val)
		}
	}
	return out, nil
}

func (m *memBackend) delMany(_ context.Context, keys []string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := m.str(k); ok {
			delete(m.strs, k)
			n++
		}
	}
	return n, nil
}

// memIndexKey is the set that stands for one lookup: the memory store keeps each in a set of
// its own, which expires ttl after its last write (as Redis's legacy sets did); exp and
// pruning are Redis's bucket bookkeeping (index.go).
func memIndexKey(x index) string { return x.key + "\x00" + x.lookup }

func (m *memBackend) pruneIndexes(context.Context, []index, time.Time) error { return nil }

func (m *memBackend) addToIndexes(_ context.Context, idx []index, member string, _ time.Time, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range idx {
		key := memIndexKey(x)
		s, ok := m.liveSet(key)
		if !ok {
			s = memSet{m: map[string]struct{}{}}
		}
		s.m[member] = struct{}{}
		s.exp = m.now().Add(ttl)
		m.sets[key] = s
	}
	m.wrote()
	return nil
}

// removeFromIndex and members ignore idx.legacy: a memory store never had format-1 sets.
func (m *memBackend) removeFromIndex(_ context.Context, idx index, members ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memIndexKey(idx)
	s, ok := m.liveSet(key)
	if !ok {
		return nil
	}
	for _, x := range members {
		delete(s.m, x)
	}
	if len(s.m) == 0 {
		delete(m.sets, key)
	}
	return nil
}

func (m *memBackend) members(_ context.Context, idx index) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, _ := m.liveSet(memIndexKey(idx))
	out := make([]string, 0, len(s.m))
	for x := range s.m {
		out = append(out, x)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memBackend) scanPrefix(_ context.Context, prefix string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.strs {
		if strings.HasPrefix(k, prefix) {
			if _, ok := m.str(k); ok {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memBackend) ping(context.Context) error { return nil }
