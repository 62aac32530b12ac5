package upstream

import (
	"context"
	"errors"
	"fmt"
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
	// Transport replaces the built-in transports (tests, benchmarks). Route.Timeout still
	// applies; with it, Serve enforces it with a per-request timer and context, where the
	// built-in transports enforce it themselves (ResponseHeaderTimeout, or a read deadline on
	// the connection: direct.go) with no timer or context in Serve.
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
	// direct[i], when not nil, serves route i's body-less, non-upgrade GET, HEAD, OPTIONS and
	// TRACE requests over a directTransport (direct.go); proxies[i] serves the rest.
	direct  []*httputil.ReverseProxy
	trusted []netip.Prefix
	owned   func(string) bool
	log     *slog.Logger
	host    string // PublicHost
	// transports are the round trippers of the routes, deduplicated: the built-in transport
	// and, per distinct Route.Timeout, a clone with ResponseHeaderTimeout and a
	// directTransport; or Options.Transport alone.
	transports []http.RoundTripper
	// timed[i]: Serve enforces route i's Timeout itself (Options.Transport was set); false
	// when route i has no Timeout or its transport has it as ResponseHeaderTimeout.
	timed []bool
	// after starts a timer; tests replace it to fire timeouts by hand.
	after func(d time.Duration, f func()) (stop func() bool)
}

// Field is one header the gateway adds to a forwarded request: a canonical name
// (http.CanonicalHeaderKey form) and one value without CR or LF.
type Field struct{ Name, Value string }

// forwardState is what Serve hands to the ReverseProxy hooks: it is the forwarded request's
// context itself (the request's, plus itself as the value of ctxKey), so handing it over
// costs no separate context.WithValue.
type forwardState struct {
	context.Context
	set   []Field
	timed bool
	dl    headerDeadline
}

// Value returns the state for ctxKey and defers every other key to the request's context.
func (s *forwardState) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return s
	}
	return s.Context.Value(key)
}

type ctxKey struct{}

// New validates the routes and builds one ReverseProxy per route over the built-in transport
// (keep-alives, MaxIdleConnsPerHost, IdleConnTimeout 90s, HTTP/1.1 to upstreams, no
// environment proxy, no transparent decompression): routes with the same Timeout share one
// transport that has it as ResponseHeaderTimeout and, for plain-HTTP upstreams, a
// directTransport for body-less GET, HEAD, OPTIONS and TRACE requests that enforces it on the
// connection (direct.go), with its own pool of idle connections. Call CloseIdleConnections
// at shutdown.
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
		timed:   make([]bool, len(table.routes)),
		direct:  make([]*httputil.ReverseProxy, len(table.routes)),
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
	var base *http.Transport
	byTimeout := map[time.Duration]http.RoundTripper{}
	directByTimeout := map[time.Duration]http.RoundTripper{}
	if opts.Transport != nil {
		p.transports = []http.RoundTripper{opts.Transport}
	} else {
		base = newTransport(opts.MaxIdleConnsPerHost)
		byTimeout[0] = base
		p.transports = []http.RoundTripper{base}
	}
	pool := &bufferPool{}
	for i, r := range table.routes {
		rt := opts.Transport
		switch {
		case rt != nil:
			p.timed[i] = r.Timeout > 0
		case byTimeout[r.Timeout] != nil:
			rt = byTimeout[r.Timeout]
		default:
			// The transport starts the clock once the request (body included) is written and
			// stops it at the response headers, as Route.Timeout says; no timer in Serve.
			t := base.Clone()
			t.ResponseHeaderTimeout = r.Timeout
			// Connecting is bounded by the timeout too (at least minDialTimeout, so that a
			// sub-second header timeout does not fail connects on a busy host).
			t.DialContext = newDialer(dialTimeoutFor(r.Timeout)).DialContext
			byTimeout[r.Timeout], rt = t, t
			p.transports = append(p.transports, t)
		}
		p.proxies = append(p.proxies, p.reverseProxy(i, rt, pool))
		if opts.Transport == nil && r.Target.Scheme == "http" {
			dt := directByTimeout[r.Timeout]
			if dt == nil {
				dt = newDirectTransport(newDialer(dialTimeoutFor(r.Timeout)).DialContext, r.Timeout, base.MaxIdleConnsPerHost)
				directByTimeout[r.Timeout] = dt
				p.transports = append(p.transports, dt)
			}
			p.direct[i] = p.reverseProxy(i, dt, pool)
		}
	}
	return p, nil
}

// reverseProxy builds route i's ReverseProxy over rt.
func (p *Proxy) reverseProxy(i int, rt http.RoundTripper, pool httputil.BufferPool) *httputil.ReverseProxy {
	name := p.table.routes[i].Name
	return &httputil.ReverseProxy{
		Rewrite:        p.rewriteFunc(i),
		ModifyResponse: p.modifyResponseFunc(),
		ErrorHandler:   p.errorHandlerFunc(name),
		Transport:      rt,
		BufferPool:     pool,
		ErrorLog:       slog.NewLogLogger(p.log.With("route", name).Handler(), slog.LevelWarn),
	}
}

func newTransport(maxIdlePerHost int) *http.Transport {
	if maxIdlePerHost <= 0 {
		maxIdlePerHost = 256
	}
	return &http.Transport{
		Proxy:                  nil, // never route upstream traffic through $HTTP_PROXY
		DialContext:            newDialer(dialTimeout).DialContext,
		MaxIdleConnsPerHost:    maxIdlePerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      false,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// dialTimeout bounds connecting to an upstream; a route's Timeout, when shorter, instead, but
// never less than minDialTimeout.
const (
	dialTimeout    = 10 * time.Second
	minDialTimeout = time.Second
)

// dialTimeoutFor is the connect bound of a route with timeout d (0: none).
func dialTimeoutFor(d time.Duration) time.Duration {
	if d <= 0 {
		return dialTimeout
	}
	return min(max(d, minDialTimeout), dialTimeout)
}

func newDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
}

// CloseIdleConnections closes kept-alive upstream connections (call it at shutdown).
func (p *Proxy) CloseIdleConnections() {
	for _, rt := range p.transports {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// Serve forwards r to route i. The caller must already have set r.URL.Path to the output of
// NormalizePath (and RawPath to ""), matched i on that path and authorised the request. set
// holds the identity headers to add after all stripping (nil for public routes); a name in
// set replaces the client's header of that name (so set must carry Authorization when the
// client's own must not pass), and values must not contain CR/LF.
//
// Serve writes the whole response, including 502/504 errors. Route.Timeout bounds connecting
// to the upstream (the built-in transports allow at least 1s for that) and, once the request
// (with its body) is fully sent, the wait for the response headers; streaming the response is
// not limited. Like httputil.ReverseProxy it panics with http.ErrAbortHandler when copying the
// body fails mid-way: a recovering middleware must re-panic that value, not answer 500.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, route int, set []Field) {
	if route < 0 || route >= len(p.proxies) {
		p.log.Error("upstream: no such route", "route", route)
		writeUpstreamError(w, r, http.StatusBadGateway)
		return
	}
	st := &forwardState{Context: r.Context(), set: set}
	if d := p.table.routes[route].Timeout; d > 0 && p.timed[route] {
		ctx, cancel := context.WithCancelCause(st.Context)
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
		st.Context = ctx
	}
	rp := p.proxies[route]
	if d := p.direct[route]; d != nil && isDirect(r) {
		rp = d
	}
	rp.ServeHTTP(w, r.WithContext(st))
}

// isDirect reports whether r goes over its route's directTransport: a GET, HEAD, OPTIONS or
// TRACE without a body (the transport may send it twice, see direct.go) and without an
// Upgrade (after a 101 the connection carries a stream).
func isDirect(r *http.Request) bool {
	return isIdempotent(r.Method) && r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) &&
		len(r.Header["Upgrade"]) == 0
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

		var set []Field
		if st, ok := pr.In.Context().Value(ctxKey{}).(*forwardState); ok {
			set = st.set
		}
		// A new map sized for what is added below, holding the client's headers minus the
		// dropped ones: cheaper than deleting from the clone and growing it (a map past 8
		// entries is rebuilt as a table).
		in := pr.Out.Header
		h := make(http.Header, len(in)+4+len(set)) // + X-Forwarded-*, User-Agent
		for k, v := range in {
			if !isDroppedHeader(k) {
				h[k] = v
			}
		}
		pr.Out.Header = h
		dropNonWebSocketUpgrade(h)
		filterCookieHeader(h, p.owned)
		vals := make([]string, 3+len(set)) // one backing array for the values set below
		p.setForwarded(pr, route.Host, vals[:3])
		for i, f := range set {
			v := vals[3+i : 4+i : 4+i]
			v[0] = f.Value
			h[textproto.CanonicalMIMEHeaderKey(f.Name)] = v
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
// replaced by the peer address and the gateway's own view for anyone else. vals (length 3)
// is the backing array for the three values.
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest, routeHost string, vals []string) {
	in, h := pr.In, pr.Out.Header
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

// modifyResponseFunc stops the header deadline (or reports it already fired), refuses status
// codes below 100 (net/http parses them, but writing one panics) and drops Set-Cookie headers
// for the gateway's own cookies.
func (p *Proxy) modifyResponseFunc() func(*http.Response) error {
	return func(res *http.Response) error {
		if st, ok := res.Request.Context().Value(ctxKey{}).(*forwardState); ok && st.timed && st.dl.stop() {
			return errHeaderTimeout // ReverseProxy closes the body and calls the ErrorHandler
		}
		if res.StatusCode < 100 {
			return fmt.Errorf("upstream: malformed status code %03d", res.StatusCode)
		}
		dropOwnedSetCookies(res.Header, p.owned)
		return nil
	}
}

// copyBufferSize is the size of ReverseProxy's copy buffers.
const copyBufferSize = 32 << 10

// bufferPool recycles the copy buffers of ReverseProxy. It pools array pointers, so that
// neither Get nor Put allocates.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.pool.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}

var _ httputil.BufferPool = (*bufferPool)(nil)

// errHeaderTimeout is the cancellation cause when a route's Timeout passes before headers.
var errHeaderTimeout = errors.New("upstream: timeout awaiting response headers")
