package bench

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// BareProxy is the baseline authgate is measured against: httputil.ReverseProxy with Rewrite
// to target, X-Forwarded-* set, and pooled copy buffers, over rt (use TunedTransport outside
// tests). It checks nothing. Each header of add (canonical names; may be nil) is also set on
// every forwarded request: with IdentityHeaders it sends what authgate sends for a session, so
// the cost of those headers alone can be told apart from the gateway's own work.
func BareProxy(target *url.URL, rt http.RoundTripper, add http.Header) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			for k, v := range add {
				pr.Out.Header[k] = v // shared read-only values: the transport only reads them
			}
		},
		Transport:  rt,
		BufferPool: &bufferPool{},
	}
}

// IdentityHeaders are the headers authgate adds to a forwarded request of a session (SPEC:
// X-Auth-User-Id, -Subject, -Email, -Name, -Roles, -Groups) plus its X-Request-Id, with
// values shaped like the benchmark user's.
func IdentityHeaders() http.Header {
	return http.Header{
		"X-Auth-User-Id": {"6f1c2a9e-3b7d-4c51-9a0e-2d8f4b6c1e73"},
		"X-Auth-Subject": {"user-alice"},
		"X-Auth-Email":   {"alice@example.com"},
		"X-Auth-Name":    {"Alice Example"},
		"X-Auth-Roles":   {"super_admin"},
		"X-Auth-Groups":  {"admins"},
		"X-Request-Id":   {"3f9a1c7e2b4d000000000001"},
	}
}

// TunedTransport is an http.Transport for a proxy in front of one upstream: keep-alives with
// maxIdlePerHost idle connections (size it to the concurrency, so no request has to dial), no
// environment proxy, no transparent decompression.
func TunedTransport(maxIdlePerHost int) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        0, // no global cap: MaxIdleConnsPerHost governs
		MaxIdleConnsPerHost: maxIdlePerHost,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
