package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session indexes: which sessions belong to a user (RevokeUser, ListUser), to an IdP session
// (issuer, sid) and to an IdP subject (issuer, sub) (back-channel logout).
//
// In Redis they share indexBuckets small hashes, <prefix>ix:{<bucket>}, instead of taking a
// key (and its per-key overhead) each: a lookup is hashed (SHA-256 of its kind and values) to
// a bucket (13 bits) and a 16-character lookup hash (96 bits); each session of the lookup is
// one field, lookup hash + handle, whose value is the Unix second after which the session is
// certainly over (its absolute expiry + 1 minute). Small hashes are listpacks in Redis (about
// 50 bytes per field here; a key of its own costs about 200). An entry outlives its session
// only until that second: a write prunes the expired entries of the buckets it touches now and
// then (pruneEvery), and a bucket without writes expires AbsoluteTimeout+1m after the last.
// Revoking and listing read the fields of one lookup (HSCAN MATCH), so they also skip and
// remove entries of sessions that are gone.
//
// Before record format 2 each lookup was a set of its own (<prefix>u:{…}, sid:{…}, sub:{…});
// those are still read and cleaned (index.legacy) until they expire.
const (
	indexBuckets = 8192
	lookupLen    = 16 // characters of the lookup hash
	pruneEvery   = 16 // one write in this many prunes its buckets
)

// index names one lookup: its bucket key, the field prefix of its entries, and its legacy set.
type index struct{ key, lookup, legacy string }

func (s *Store) newIndex(kind string, parts ...string) index {
	h := sha256.New()
	h.Write([]byte("authgate/session/index\x00" + kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	bucket := binary.BigEndian.Uint16(sum) % indexBuckets
	return index{key: s.opts.KeyPrefix + "ix:{" + strconv.Itoa(int(bucket)) + "}",
		lookup: base64.RawURLEncoding.EncodeToString(sum[2:14])}
}

func (s *Store) userIndex(userID string) index {
	x := s.newIndex("user", userID)
	x.legacy = s.opts.KeyPrefix + "u:{" + userID + "}"
	return x
}

func (s *Store) sidIndex(issuer, sid string) index {
	x := s.newIndex("sid", issuer, sid)
	x.legacy = s.opts.KeyPrefix + "sid:{" + hashKey(issuer, sid) + "}"
	return x
}

func (s *Store) subIndex(issuer, sub string) index {
	x := s.newIndex("sub", issuer, sub)
	x.legacy = s.opts.KeyPrefix + "sub:{" + hashKey(issuer, sub) + "}"
	return x
}

// indexes are the lookups that name rec's handle: per user, per IdP session, per subject.
func (s *Store) indexes(rec *Record) []index {
	var out []index
	if rec.UserID != "" {
		out = append(out, s.userIndex(rec.UserID))
	}
	if rec.Issuer != "" && rec.IdPSessionID != "" {
		out = append(out, s.sidIndex(rec.Issuer, rec.IdPSessionID))
	}
	if rec.Issuer != "" && rec.Subject != "" {
		out = append(out, s.subIndex(rec.Issuer, rec.Subject))
	}
	return out
}

// addToIndexes enters rec's handle in its indexes, until rec's absolute expiry + 1 minute,
// and now and then prunes the buckets written (a failed prune is only logged).
func (s *Store) addToIndexes(ctx context.Context, rec *Record) error {
	idx := s.indexes(rec)
	if len(idx) == 0 {
		return nil
	}
	if err := s.b.addToIndexes(ctx, idx, rec.Handle, rec.ExpiresAt.Add(time.Minute), s.opts.AbsoluteTimeout+time.Minute); err != nil {
		return err
	}
	if rand.IntN(pruneEvery) == 0 {
		if err := s.b.pruneIndexes(ctx, idx, s.now()); err != nil {
			s.log.Warn("session: index prune", "err", err)
		}
	}
	return nil
}

// pruneLua: KEYS[1] a bucket, ARGV[1] now (Unix seconds). Deletes the entries past their time.
const pruneLua = `local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #all, 2 do
  local exp = tonumber(all[i + 1])
  if exp == nil or exp < now then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
return n`

func (r *redisBackend) addToIndexes(ctx context.Context, idx []index, member string, exp time.Time, ttl time.Duration) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	until := strconv.FormatInt(exp.Unix(), 10)
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, x := range idx {
			p.HSet(ctx, x.key, x.lookup+member, until)
			p.PExpire(ctx, x.key, ttl)
		}
		return nil
	})
	if err != nil {
		return unavailable("hset", err)
	}
	return nil
}

func (r *redisBackend) pruneIndexes(ctx context.Context, idx []index, now time.Time) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	for _, x := range idx {
		if err := r.pruneScript.Run(ctx, r.c, []string{x.key}, now.Unix()).Err(); err != nil {
			return unavailable("prune", err)
		}
	}
	return nil
}

func (r *redisBackend) removeFromIndex(ctx context.Context, idx index, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	fields := make([]string, len(members))
	legacy := make([]any, len(members))
	for i, m := range members {
		fields[i], legacy[i] = idx.lookup+m, m
	}
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, idx.key, fields...)
		if idx.legacy != "" {
			p.SRem(ctx, idx.legacy, legacy...)
		}
		return nil
	})
	if err != nil {
		return unavailable("hdel", err)
	}
	return nil
}

// maxIndexScans bounds the HSCAN calls of one lookup (a bucket is small: one call, normally).
const maxIndexScans = 100

func (r *redisBackend) members(ctx context.Context, idx index) ([]string, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	var out []string
	var cursor uint64
	for range maxIndexScans {
		kv, next, err := r.c.HScan(ctx, idx.key, cursor, idx.lookup+"*", 1000).Result()
		if err != nil {
			return nil, unavailable("hscan", err)
		}
		for i := 0; i < len(kv); i += 2 {
			if h, ok := strings.CutPrefix(kv[i], idx.lookup); ok && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if idx.legacy != "" {
		m, err := r.c.SMembers(ctx, idx.legacy).Result()
		if err != nil {
			return nil, unavailable("smembers", err)
		}
		for _, h := range m {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out, nil
}
