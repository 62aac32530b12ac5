package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session indexes: which sessions belong to an IdP session (issuer, sid) and to an IdP subject
// (issuer, sub): back-channel logout, and the ops API's "sessions of a user", which resolves a
// user id to its (issuer, subject) in the database (a user row has exactly one).
//
// In Redis they share indexBuckets small hashes, <prefix>ix:{<bucket>}, instead of taking a
// key (and its per-key overhead) each: a lookup is hashed (SHA-256 of its kind and values) to
// a bucket (13 bits) and an 8-byte lookup hash (64 bits); each session of the lookup is one
// field, lookup hash + the handle packed in 17 bytes (packHandle), whose value is the Unix
// second after which the session is certainly over (its absolute expiry + 1 minute). Small
// hashes are listpacks in Redis (about 33 bytes per field; a key of its own costs about 200).
// An entry outlives its session only until that second: a write prunes the expired entries of
// the buckets it touches now and then (pruneEvery), and a bucket without writes expires
// AbsoluteTimeout+1m after the last. Revoking and listing read the bucket of one lookup (a few
// dozen fields) and pick its entries; they also skip and remove entries of sessions that are
// gone.
//
// Index format 2 (before this one) also indexed each session by user id and wrote fields as
// text: a 16-character lookup hash + the 22-character handle (index.prior); format 1 made each
// lookup a set of its own (<prefix>sid:{…}, sub:{…}; index.legacy). Both are still read and
// cleaned until they expire, so sessions made before an upgrade stay revocable.
const (
	indexBuckets    = 8192
	lookupLen       = 8  // bytes of the lookup hash in a field
	priorLookupLen  = 16 // characters of the lookup hash in a format-2 field
	packedHandleLen = 17 // bytes of a packed handle (22 base64url characters = 132 bits)
	pruneEvery      = 16 // one write in this many prunes its buckets
)

// index names one lookup: its bucket key, the field prefix of its entries, the field prefix of
// its format-2 entries and its format-1 set.
type index struct{ key, lookup, prior, legacy string }

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
		lookup: string(sum[2 : 2+lookupLen]),
		prior:  base64.RawURLEncoding.EncodeToString(sum[2:14])}
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

// field is the bucket field naming handle (a valid handle) in x.
func (x index) field(handle string) string { return x.lookup + packHandle(handle) }

// handleIn returns the handle a bucket field names in x (format 3 or 2), and false when the
// field belongs to another lookup or is malformed.
func (x index) handleIn(field string) (string, bool) {
	if p, ok := strings.CutPrefix(field, x.lookup); ok && len(p) == packedHandleLen {
		return unpackHandle(p)
	}
	if h, ok := strings.CutPrefix(field, x.prior); ok && validHandle(h) {
		return h, true
	}
	return "", false
}

// packHandle is the 17 bytes of a valid handle's 132 bits (the last 4 bits zero).
func packHandle(h string) string {
	var src [handleLen + 2]byte
	copy(src[copy(src[:], h):], "AA")
	var dst [18]byte
	base64.RawURLEncoding.Decode(dst[:], src[:]) // h is valid (callers check): no error
	return string(dst[:packedHandleLen])
}

// unpackHandle reverses packHandle; false when p cannot be a packed handle.
func unpackHandle(p string) (string, bool) {
	if len(p) != packedHandleLen || p[packedHandleLen-1]&0x0f != 0 {
		return "", false
	}
	var src [18]byte
	copy(src[:], p)
	var dst [24]byte
	base64.RawURLEncoding.Encode(dst[:], src[:])
	return string(dst[:handleLen]), true
}

// indexes are the lookups that name rec's handle: per IdP session, per subject.
func (s *Store) indexes(rec *Record) []index {
	var out []index
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
	if !validHandle(rec.Handle) {
		return errors.New("session: index: invalid handle")
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
			p.HSet(ctx, x.key, x.field(member), until)
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
	fields := make([]string, 0, 2*len(members))
	legacy := make([]any, len(members))
	for i, m := range members {
		if validHandle(m) {
			fields = append(fields, idx.field(m))
		}
		fields, legacy[i] = append(fields, idx.prior+m), m
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
		// No MATCH: a lookup hash is binary, and a bucket is a few dozen fields.
		kv, next, err := r.c.HScan(ctx, idx.key, cursor, "", 1000).Result()
		if err != nil {
			return nil, unavailable("hscan", err)
		}
		for i := 0; i < len(kv); i += 2 {
			if h, ok := idx.handleIn(kv[i]); ok && !slices.Contains(out, h) {
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
