package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A lost invalidation (key deleted without a message) must not be served for long once the
// subscription breaks: go-redis resubscribes, and a resubscription empties the cache.
func TestCacheSubscriptionKilled(t *testing.T) {
	p := newPair(t, nil)
	ctx := context.Background()
	sess, c := login(t, p.a, testRecord("alice"))
	mustLive(t, p.b, c)
	p.deleteBehindBack(t, handleOf(sess.ID))
	mustLive(t, p.b, c) // served from the cache: the invalidation is "lost"

	list, err := p.clientA.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.SplitSeq(list, "\n") {
		if strings.Contains(line, " name="+p.clientB.Options().ClientName+" ") && strings.Contains(line, "flags=P") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := p.clientA.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscriber connections of B, want 1", killed)
	}
	within(t, time.Second, "B refuses the session deleted behind its back", func() bool { return isGone(t, p.b, c) })
	within(t, 2*time.Second, "B's subscription back", func() bool { return p.b.cache.healthy() })
	mustGone(t, p.b, c) // and the resubscription emptied the cache: the stale copy is gone for good

	// Invalidations work again after the resubscription.
	sess2, c2 := login(t, p.a, testRecord("bob"))
	mustLive(t, p.b, c2)
	if err := p.a.Revoke(ctx, handleOf(sess2.ID)); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "B refuses a session revoked after the reconnect", func() bool { return isGone(t, p.b, c2) })
}

// When Redis goes away, a warm cache must not keep serving: Get fails closed.
func TestCacheRedisDown(t *testing.T) {
	clientA, prefix := redisForTest(t)
	proxy := startProxy(t, redisAddr)
	clientB := redis.NewClient(&redis.Options{Addr: proxy.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { clientB.Close() })
	clock := newClock()
	a := newRedisStore(t, clientA, prefix, clock, nil)
	b := newRedisStore(t, clientB, prefix, clock, func(o *Options) { o.OpTimeout = 300 * time.Millisecond })
	sess, c := login(t, a, testRecord("alice"))
	mustLive(t, b, c)
	if !cached(b, handleOf(sess.ID)) {
		t.Fatal("B did not cache the session")
	}

	proxy.stop()
	within(t, time.Second, "B fails closed", func() bool {
		s, err := get(t, b, c)
		return errors.Is(err, ErrUnavailable) && s.IsNew
	})
}

func TestCacheClose(t *testing.T) {
	p := newPair(t, nil)
	sess, c := login(t, p.a, testRecord("alice"))
	mustLive(t, p.b, c)
	if err := p.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	p.deleteBehindBack(t, handleOf(sess.ID))
	mustGone(t, p.b, c) // no subscription: no cache

	mem, err := NewMemory(Options{Secure: true, Secrets: [][]byte{secretA()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Close(); err != nil {
		t.Errorf("memory Close: %v", err)
	}
}

func TestCacheSizeBound(t *testing.T) {
	const size = 3
	p := newPair(t, func(o *Options) { o.CacheSize = size })
	var cookies []*http.Cookie
	for i := range 10 {
		_, c := login(t, p.a, testRecord(fmt.Sprint("user", i)))
		cookies = append(cookies, c)
		mustLive(t, p.b, c)
		if n := p.b.cache.len(); n > size {
			t.Fatalf("cache holds %d entries, bound %d", n, size)
		}
	}
	if n := p.b.cache.len(); n != size {
		t.Errorf("cache holds %d entries, want %d (full)", n, size)
	}
	for _, c := range cookies { // evicted ones are read from Redis again
		mustLive(t, p.b, c)
	}
}

func TestCacheDisabled(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
	}{
		{name: "negative CacheTTL", mutate: func(o *Options) { o.CacheTTL = -1 }},
		{name: "negative CacheSize", mutate: func(o *Options) { o.CacheSize = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, tt.mutate)
			sess, c := login(t, p.a, testRecord("alice"))
			mustLive(t, p.b, c)
			p.deleteBehindBack(t, handleOf(sess.ID))
			mustGone(t, p.b, c)
		})
	}
}

// Revocations are published on <KeyPrefix>inval as space-separated handles.
func TestInvalidationChannel(t *testing.T) {
	p := newPair(t, nil)
	ctx := context.Background()
	ps := p.clientA.Subscribe(ctx, p.prefix+"inval")
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, time.Second); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	s1, _ := login(t, p.a, testRecord("alice"))
	s2, _ := login(t, p.a, testRecord("alice"))
	if _, err := p.a.RevokeSubject(ctx, testIssuer, "sub-alice"); err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveTimeout(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := msg.(*redis.Message)
	if !ok {
		t.Fatalf("got %T, want a message", msg)
	}
	got := strings.Fields(m.Payload)
	if len(got) != 2 || !strings.Contains(m.Payload, handleOf(s1.ID)) || !strings.Contains(m.Payload, handleOf(s2.ID)) {
		t.Errorf("payload %q, want the two handles", m.Payload)
	}
}

// proxy forwards TCP connections to a backend until stop, which closes all of them.
type tcpProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	stopped bool
	wg      sync.WaitGroup
}

func startProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", backend, time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.stopped {
				c.Close()
				up.Close()
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	p.stopped = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
