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
// tests). It checks nothing.
func BareProxy(target *url.URL, rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  rt,
		BufferPool: &bufferPool{},
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
