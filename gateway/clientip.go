package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address of the client: the direct peer, or, when the peer is a trusted
// proxy, the right-most X-Forwarded-For entry that is not itself a trusted proxy.
func (g *Gateway) clientIP(r *http.Request) string { return g.clientAddr(r).String() }

// clientAddr is clientIP as an address (the zero Addr when the peer address does not parse).
func (g *Gateway) clientAddr(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !g.trusted(peer) {
		return peer
	}
	xff := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(xff) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(xff[i]))
		if err != nil {
			break
		}
		if !g.trusted(a) {
			return a
		}
	}
	return peer
}

func (g *Gateway) trusted(a netip.Addr) bool {
	for _, p := range g.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// userAgent is the client's User-Agent, bounded for storage.
func userAgent(r *http.Request) string {
	return cleanHeaderValue(truncate(r.UserAgent(), 256))
}
