package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
)

// templateRecord returns the record (tokens included) of the only session in the store: the
// one the real login made, so seeded sessions have the real token sizes.
func templateRecord(ctx context.Context, st *session.Store) (*session.Record, error) {
	recs, err := st.List(ctx, 10)
	if err != nil {
		return nil, err
	}
	if len(recs) != 1 {
		return nil, fmt.Errorf("expected exactly one session after the login, found %d", len(recs))
	}
	return st.Lookup(ctx, recs[0].Handle)
}

// seedSessions saves n sessions through st.Save, each a copy of tmpl for its own user (own
// user id, subject and IdP session id, so every index entry is a lookup of its own, the
// costly case),
// and writes their cookies ("name=value", one a line) to cookiesPath.
func seedSessions(ctx context.Context, st *session.Store, tmpl *session.Record, n, workers int, cookiesPath string) error {
	cookies := make([]string, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := saveCopy(ctx, st, tmpl, i)
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				cookies[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	f, err := os.Create(cookiesPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, c := range cookies {
		_, _ = w.WriteString(c + "\n")
	}
	return errors.Join(w.Flush(), f.Close())
}

func saveCopy(ctx context.Context, st *session.Store, tmpl *session.Record, i int) (string, error) {
	rec := *tmpl
	rec.Handle, rec.CreatedAt, rec.LastSeenAt, rec.ExpiresAt = "", time.Time{}, time.Time{}, time.Time{}
	rec.UserID = fmt.Sprintf("5f0c8a2e-7b1d-4c3a-9e6f-%012d", i)
	rec.Subject = "seed-" + strconv.Itoa(i)
	rec.Email = "seed" + strconv.Itoa(i) + "@example.com"
	rec.IdPSessionID = fmt.Sprintf("%s-%d", tmpl.IdPSessionID, i)
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://gateway/.auth/callback", nil)
	sess, err := st.New(r, sessionCookie)
	if err != nil {
		return "", err
	}
	session.SetRecord(sess, &rec)
	w := httptest.NewRecorder()
	if err := st.Save(r, w, sess); err != nil {
		return "", err
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("Save set no cookie")
}

// usedMemory is INFO memory's used_memory (the whole server, every DB).
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no used_memory in INFO memory")
}

// keyStats is what one kind of key (s:, uh:, sidh:, subh:) costs in Redis.
type keyStats struct {
	kind         string
	count        int64
	sampled      int
	meanUsage    float64 // MEMORY USAGE, bytes
	meanValueLen float64 // STRLEN for strings, SCARD for sets, HLEN for hashes
}

// keyCensus scans the DB, counts keys by kind (the part after the prefix up to ":{") and
// samples up to perKind keys of each with MEMORY USAGE.
func keyCensus(ctx context.Context, rdb *redis.Client, perKind int) ([]keyStats, error) {
	samples := map[string][]string{}
	counts := map[string]int64{}
	var order []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		kind := keyKind(k)
		if _, seen := counts[kind]; !seen {
			order = append(order, kind)
		}
		counts[kind]++
		if len(samples[kind]) < perKind {
			samples[kind] = append(samples[kind], k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	out := make([]keyStats, 0, len(order))
	for _, kind := range order {
		ks, err := sampleKeys(ctx, rdb, samples[kind])
		if err != nil {
			return nil, err
		}
		ks.kind, ks.count = kind, counts[kind]
		out = append(out, ks)
	}
	return out, nil
}

func keyKind(k string) string {
	if i := strings.Index(k, ":{"); i >= 0 {
		return k[:i+1]
	}
	return k
}

func sampleKeys(ctx context.Context, rdb *redis.Client, keys []string) (keyStats, error) {
	usage := make([]*redis.IntCmd, len(keys))
	typ := make([]*redis.StatusCmd, len(keys))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			usage[i] = p.MemoryUsage(ctx, k, 0)
			typ[i] = p.Type(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return keyStats{}, err
	}
	var ks keyStats
	for i, k := range keys {
		u, err := usage[i].Result()
		if err != nil {
			continue // expired in between
		}
		var n int64
		switch typ[i].Val() {
		case "set":
			n, _ = rdb.SCard(ctx, k).Result()
		case "hash": // the session indexes since record format 2
			n, _ = rdb.HLen(ctx, k).Result()
		default:
			n, _ = rdb.StrLen(ctx, k).Result()
		}
		ks.sampled++
		ks.meanUsage += float64(u)
		ks.meanValueLen += float64(n)
	}
	if ks.sampled > 0 {
		ks.meanUsage /= float64(ks.sampled)
		ks.meanValueLen /= float64(ks.sampled)
	}
	return ks, nil
}
