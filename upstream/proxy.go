package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// Options configures New. The zero value of every optional field is safe.
type Options struct {
	// Routes are forwarded by index: Serve(w, r, i, ...) uses Routes[i]. Build the Table from
	// the same slice so that Match indexes line up.
	Routes []Route
	// TrustedProxies are the direct peers whose X-Forwarded-For/-Proto/-Host are kept (and the
	// peer appended). Requests from anyone else get those headers replaced.
	TrustedProxies []netip.Prefix
	// GatewayCookies reports the cookie names the gateway owns: they are removed from the
	// forwarded Cookie header and upstream Set-Cookie headers for them are dropped. Other cookies
	// pass byte-for-byte, in order. nil means the gateway owns none.
	GatewayCookies func(name string) bool
	// MaxIdleConnsPerHost bounds kept-alive upstream connections per host; default 256.
	// Ignored when Transport is set.
	MaxIdleConnsPerHost int
	// Logger receives upstream errors at warn (route name and detail). nil discards.
	Logger *slog.Logger
	// Transport replaces the built-in transport (tests, benchmarks). Route.Timeout still
	// applies; it is enforced with a context deadline, not by the transport.
	Transport http.RoundTripper
	// PublicHost is the host[:port] browsers use for the gateway (from server.public_url). It
	// is the X-Forwarded-Host of requests from untrusted peers on routes without a Host, so a
	// client's own Host header (or absolute-form target) never reaches an upstream that builds
	// links from it. Empty: the request's Host.
	PublicHost string
}

// Proxy forwards requests to the routes' upstreams with httputil.ReverseProxy (Rewrite).
// It is safe for concurrent use. It makes no access decision: the caller must only Serve
// requests it has authorised, on the route it matched on the normalised path.
type Proxy struct {
	table   *Table
	proxies []*httputil.ReverseProxy
	trusted []netip.Prefix
	owned   func(string) bool
	log     *slog.Logger
	host    string // PublicHost
	rt      http.RoundTripper
	// after starts a timer; tests replace it to fire timeouts by hand.
	after func(d time.Duration, f func()) (stop func() bool)
}

// forwardState is the one context value Serve hands to the ReverseProxy hooks.
type forwardState struct {
	set   http.Header
	timed bool
	dl    headerDeadline
}

type ctxKey struct{}

// New validates the routes and builds one ReverseProxy per route over one shared transport
// (keep-alives, MaxIdleConnsPerHost, IdleConnTimeout 90s, HTTP/1.1 to upstreams, no
// environment proxy, no transparent decompression). Call CloseIdleConnections at shutdown.
func New(opts Options) (*Proxy, error) {
	table, err := NewTable(opts.Routes)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		table:   table,
		trusted: make([]netip.Prefix, len(opts.TrustedProxies)),
		owned:   opts.GatewayCookies,
		host:    opts.PublicHost,
		log:     opts.Logger,
		rt:      opts.Transport,
		after: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
	}
	for i, pfx := range opts.TrustedProxies {
		p.trusted[i] = pfx.Masked()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.rt == nil {
		p.rt = newTransport(opts.MaxIdleConnsPerHost)
	}
	pool := &bufferPool{}
	for i, r := range table.routes {
		p.proxies = append(p.proxies, &httputil.ReverseProxy{
			Rewrite:        p.rewriteFunc(i),
			ModifyResponse: p.modifyResponseFunc(),
			ErrorHandler:   p.errorHandlerFunc(r.Name),
			Transport:      p.rt,
			BufferPool:     pool,
			ErrorLog:       slog.NewLogLogger(p.log.With("route", r.Name).Handler(), slog.LevelWarn),
		})
	}
	return p, nil
}

func newTransport(maxIdlePerHost int) *http.Transport {
	if maxIdlePerHost <= 0 {
		maxIdlePerHost = 256
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil, // never route upstream traffic through $HTTP_PROXY
		DialContext:            dialer.DialContext,
		MaxIdleConnsPerHost:    maxIdlePerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      false,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// CloseIdleConnections closes kept-alive upstream connections (call it at shutdown).
func (p *Proxy) CloseIdleConnections() {
	if c, ok := p.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Serve forwards r to route i. The caller must already have set r.URL.Path to the output of
// NormalizePath (and RawPath to ""), matched i on that path and authorised the request. set
// holds the identity headers to add after all stripping (nil for public routes); Serve takes
// ownership of it; a key in set replaces the client's header of that name (so set must carry
// Authorization when the client's own must not pass), and values must not contain CR/LF.
//
// Serve writes the whole response, including 502/504 errors. Route.Timeout counts from Serve
// (or, for a request with a body, from the moment the body is fully sent) until the response
// headers. Like httputil.ReverseProxy it panics with http.ErrAbortHandler when copying the
// body fails mid-way: a recovering middleware must re-panic that value, not answer 500.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, route int, set http.Header) {
	if route < 0 || route >= len(p.proxies) {
		p.log.Error("upstream: no such route", "route", route)
		writeUpstreamError(w, r, http.StatusBadGateway)
		return
	}
	st := &forwardState{set: set}
	ctx := r.Context()
	if d := p.table.routes[route].Timeout; d > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		st.timed = true
		st.dl = headerDeadline{d: d, after: p.after, cancel: cancel}
		defer st.dl.stop()
		if r.ContentLength == 0 {
			st.dl.arm()
		} else {
			// Uploading the body does not count: the clock starts once it is written.
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { st.dl.arm() },
			})
		}
	}
	p.proxies[route].ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, st)))
}

// rewriteFunc builds route i's Rewrite: URL, Host, strip client headers, filter cookies,
// X-Forwarded-*, then the gateway's identity headers. ReverseProxy has already removed
// hop-by-hop headers (including those named in Connection), Forwarded, X-Forwarded-For/
// -Host/-Proto, and unparsable query parameters before this runs.
func (p *Proxy) rewriteFunc(i int) func(*httputil.ProxyRequest) {
	route, base := p.table.routes[i], p.table.bases[i]
	return func(pr *httputil.ProxyRequest) {
		path := pr.In.URL.Path
		if route.StripPrefix {
			path = stripPrefix(path, base)
		}
		pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
		pr.SetURL(route.Target)
		pr.Out.Host = route.Target.Host

		h := pr.Out.Header
		for k := range h {
			if isDroppedHeader(k) {
				delete(h, k)
			}
		}
		dropNonWebSocketUpgrade(h)
		filterCookieHeader(h, p.owned)
		p.setForwarded(pr, route.Host)
		if st, ok := pr.In.Context().Value(ctxKey{}).(*forwardState); ok {
			for k, v := range st.set {
				h[textproto.CanonicalMIMEHeaderKey(k)] = v
			}
		}
	}
}

// stripPrefix removes the matched prefix base (lower-case, no trailing slash) from p.
func stripPrefix(p, base string) string {
	if base == "" || !hasPathPrefix(p, base) {
		return p
	}
	if p = p[len(base):]; p == "" {
		return "/"
	}
	return p
}

// dropNonWebSocketUpgrade keeps WebSocket upgrades and removes every other one (h2c
// smuggling): without an Upgrade header a 101 from the upstream is refused by ReverseProxy.
func dropNonWebSocketUpgrade(h http.Header) {
	if up := h.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		h.Del("Upgrade")
		h.Del("Connection")
	}
}

// setForwarded sets X-Forwarded-For/-Proto/-Host: kept and appended for a trusted peer,
// replaced by the peer address and the gateway's own view for anyone else.
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest, routeHost string) {
	in, h := pr.In, pr.Out.Header
	vals := make([]string, 3)          // one backing array for the three values
	vals[1], vals[2] = "http", in.Host // a route with a Host matched in.Host exactly
	if routeHost == "" && p.host != "" {
		vals[2] = p.host
	}
	if in.TLS != nil {
		vals[1] = "https"
	}
	peer, addr, ok := peerAddr(in.RemoteAddr)
	if ok && p.isTrusted(addr) {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			peer = strings.Join(prior, ", ") + ", " + peer
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			vals[1] = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			vals[2] = v
		}
	}
	if ok {
		vals[0] = peer
		h["X-Forwarded-For"] = vals[0:1:1]
	}
	h["X-Forwarded-Proto"] = vals[1:2:2]
	h["X-Forwarded-Host"] = vals[2:3:3]
}

// peerAddr returns the direct peer's IP (IPv4-mapped addresses unmapped, zone dropped).
func peerAddr(remote string) (string, netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return "", netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", netip.Addr{}, false
	}
	if c := a.Unmap().WithZone(""); c != a {
		return c.String(), c, true
	}
	return host, a, true
}

func (p *Proxy) isTrusted(a netip.Addr) bool {
	for _, pfx := range p.trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// modifyResponseFunc stops the header deadline (or reports it already fired) and drops
// Set-Cookie headers for the gateway's own cookies.
func (p *Proxy) modifyResponseFunc() func(*http.Response) error {
	return func(res *http.Response) error {
		if st, ok := res.Request.Context().Value(ctxKey{}).(*forwardState); ok && st.timed && st.dl.stop() {
			return errHeaderTimeout // ReverseProxy closes the body and calls the ErrorHandler
		}
		dropOwnedSetCookies(res.Header, p.owned)
		return nil
	}
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

var _ httputil.BufferPool = (*bufferPool)(nil)

// errHeaderTimeout is the cancellation cause when a route's Timeout passes before headers.
var errHeaderTimeout = errors.New("upstream: timeout awaiting response headers")
