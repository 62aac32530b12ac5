package gateway

import (
	"container/list"
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login abuse limits (issue 9, bounded resources).
const (
	// DefaultLoginFlowsPerBrowser is the cap cmd/authgate applies to Options.LoginFlowsPerBrowser.
	DefaultLoginFlowsPerBrowser = 20
	// maxLimitedIPs bounds the per-IP limiter map; the least recently seen IP is forgotten first.
	maxLimitedIPs = 100_000
)

// flowCounter is the optional part of Sessions that counts login flows per browser.
// *session.Store implements it; a store without it is not capped.
type flowCounter interface {
	CountFlow(ctx context.Context, binding string, ttl time.Duration) (int64, error)
}

// ipLimiter holds one token bucket per client IP (burst perMin, refilled at perMin a minute),
// at most max of them: the least recently used bucket is dropped to make room. A dropped IP
// starts again with a full bucket, so max must be far above the number of IPs that are
// flooding at once. Safe for concurrent use.
type ipLimiter struct {
	mu     sync.Mutex
	perMin int
	max    int
	byIP   map[string]*list.Element // values are *ipBucket
	lru    *list.List               // front: most recently used
}

type ipBucket struct {
	ip  string
	lim *rate.Limiter
}

func newIPLimiter(perMin, max int) *ipLimiter {
	return &ipLimiter{perMin: perMin, max: max, byIP: make(map[string]*list.Element), lru: list.New()}
}

// allow takes one token of ip's bucket at now; when there is none it returns false and how
// long until there is one.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *ipBucket
	if e, ok := l.byIP[ip]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*ipBucket)
	} else {
		b = &ipBucket{ip: ip, lim: rate.NewLimiter(rate.Limit(float64(l.perMin)/60), l.perMin)}
		l.byIP[ip] = l.lru.PushFront(b)
		for l.lru.Len() > l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.byIP, old.Value.(*ipBucket).ip)
		}
	}
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, time.Duration(missing / float64(b.lim.Limit()) * float64(time.Second))
}

// size is the number of IPs tracked.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// rateLimit wraps the login endpoints with the per-IP limit of Options.LoginRateLimit (all
// wrapped endpoints share one bucket per IP); with a limit of 0 it returns next unchanged.
func (g *Gateway) rateLimit() func(http.Handler) http.Handler {
	if g.opts.LoginRateLimit <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	lim := newIPLimiter(g.opts.LoginRateLimit, maxLimitedIPs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, wait := lim.allow(g.clientIP(r), g.now()); !ok {
				g.writeError(w, r, tooManyRequests(w, wait, "login rate limit of the client IP"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// capFlows refuses a login when the browser (its login-flow cookie) already started
// Options.LoginFlowsPerBrowser flows within flowTTL. A binding the browser did not send (one
// browserBinding has just made up) is not counted: it would only add a key per request, and
// cookie-less floods are bounded by the per-IP rate limit instead. So the counter misses the
// flow that made the cookie, and n counted flows mean n+1 started.
func (g *Gateway) capFlows(ctx context.Context, r *http.Request, w http.ResponseWriter, binding string) error {
	fc, ok := g.opts.Sessions.(flowCounter)
	if g.opts.LoginFlowsPerBrowser <= 0 || !ok {
		return nil
	}
	if c, err := r.Cookie(g.txCookie); err != nil || c.Value != binding {
		return nil
	}
	n, err := fc.CountFlow(ctx, hashString(binding), flowTTL)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "session_store_unavailable", "The service is temporarily unavailable. Please try again shortly.", err)
	}
	if n+1 > int64(g.opts.LoginFlowsPerBrowser) {
		return tooManyRequests(w, flowTTL, "login flows of one browser")
	}
	return nil
}

// tooManyRequests sets Retry-After (whole seconds, at least 1) and returns the 429 error.
func tooManyRequests(w http.ResponseWriter, wait time.Duration, why string) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return fail(http.StatusTooManyRequests, "too_many_requests",
		"Too many login attempts. Please wait a moment and try again.", errString(why))
}

// errString is a fixed error detail for the log.
type errString string

func (e errString) Error() string { return string(e) }
