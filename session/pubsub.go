package session

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cross-instance invalidation over Redis pub/sub. Whatever ends or rewrites a session publishes
// its handles on <KeyPrefix>inval after the backend write; every Store on that prefix subscribes
// and drops them from its cache. The cache is trusted only while the subscription is healthy:
// a frame (confirmation, message or pong) arrived within healthWindow. The loop pings after
// every heartbeat of silence, so a healthy idle subscription is confirmed about 4 times a second;
// after a (re)subscription the whole cache is emptied, since messages sent while it was down
// are lost.
//
// Bound: a revoked session is refused on every instance within the pub/sub latency (typically
// a millisecond) while the subscription is healthy; when it breaks, within healthWindow (750ms)
// of the last frame; and whatever happens, within CacheTTL of the entry's backend read.
const (
	heartbeat    = 250 * time.Millisecond
	healthWindow = 750 * time.Millisecond
	maxBackoff   = time.Second
	publishBatch = 512 // handles per message
)

// invalidator publishes invalidations and, when the Store has a cache, runs the subscription
// that applies them.
type invalidator struct {
	client  redis.UniversalClient
	channel string
	timeout time.Duration
	cache   *cache
	log     *slog.Logger

	ps        *redis.PubSub // nil without a cache: publish only
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// newInvalidator starts the subscription loop when c is not nil. It does no I/O itself:
// connecting and subscribing happen in the loop, so a Redis that is down at start-up is retried.
func newInvalidator(client redis.UniversalClient, channel string, timeout time.Duration, c *cache, log *slog.Logger) *invalidator {
	v := &invalidator{client: client, channel: channel, timeout: timeout, cache: c, log: log}
	if c == nil {
		return v
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.ps, v.cancel, v.done = client.Subscribe(ctx), cancel, make(chan struct{})
	go v.run(ctx)
	return v
}

// run receives until ctx ends. go-redis reconnects and resubscribes by itself on the next
// receive after a broken connection.
func (v *invalidator) run(ctx context.Context) {
	defer close(v.done)
	down := true                       // for logging transitions only; health itself is the cache's deadline
	_ = v.ps.Subscribe(ctx, v.channel) // an error is retried by the receive below
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := v.ps.ReceiveTimeout(ctx, heartbeat)
		switch {
		case ctx.Err() != nil:
			return
		case isTimeout(err):
			if err := v.ps.Ping(ctx); err != nil {
				v.cache.markUnhealthy()
			}
			continue
		case err != nil:
			v.cache.markUnhealthy()
			if !down {
				v.log.Warn("session: invalidation subscription lost, bypassing the session cache", "err", err)
				down = true
			}
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				v.cache.reset()
			}
		case *redis.Message:
			v.cache.drop(strings.Fields(m.Payload)...)
		}
		v.cache.markHealthy(healthWindow)
		if down {
			v.log.Info("session: invalidation subscription up, session cache in use")
			down = false
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// publish tells every instance to drop handles. A failure is logged, not returned: the
// backend write already happened, and other instances refuse the session anyway once their
// entry is CacheTTL old (or at once if their subscription is down too).
func (v *invalidator) publish(ctx context.Context, handles []string) {
	for len(handles) > 0 {
		n := min(len(handles), publishBatch)
		if err := v.publishOnce(ctx, strings.Join(handles[:n], " ")); err != nil {
			v.log.Warn("session: publish invalidation", "handles", n, "err", err)
		}
		handles = handles[n:]
	}
}

func (v *invalidator) publishOnce(ctx context.Context, payload string) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	return v.client.Publish(ctx, v.channel, payload).Err()
}

// close stops the subscription loop and waits for it. Safe to call more than once.
func (v *invalidator) close() error {
	if v.ps == nil {
		return nil
	}
	var err error
	v.closeOnce.Do(func() {
		v.cancel()
		err = v.ps.Close()
		<-v.done
		v.cache.markUnhealthy()
	})
	return err
}
