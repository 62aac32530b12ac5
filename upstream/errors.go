package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// headerDeadline cancels a forwarded request when the upstream's response headers take
// longer than d after arm; stop marks the headers as arrived, so streams and WebSockets are
// never cut by it afterwards.
type headerDeadline struct {
	d      time.Duration
	after  func(time.Duration, func()) func() bool
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	stopTimer func() bool
	done      bool
	fired     bool
}

// arm starts the clock once; it does nothing after stop.
func (h *headerDeadline) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || h.stopTimer != nil {
		return
	}
	h.stopTimer = h.after(h.d, h.fire)
}

func (h *headerDeadline) fire() {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return
	}
	h.fired = true
	h.mu.Unlock()
	h.cancel(errHeaderTimeout)
}

// stop disarms the clock and reports whether it had already fired.
func (h *headerDeadline) stop() (fired bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	if h.stopTimer != nil {
		h.stopTimer()
	}
	return h.fired
}

// errorHandlerFunc maps a forwarding error to 504 (timeouts) or 502 (everything else) and
// writes nothing when the client went away. The detail goes to the log, never to the client.
func (p *Proxy) errorHandlerFunc(route string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		ctx := r.Context()
		cause := context.Cause(ctx)
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, errHeaderTimeout) || errors.Is(cause, errHeaderTimeout):
			status = http.StatusGatewayTimeout
		case errors.Is(ctx.Err(), context.Canceled):
			p.log.Debug("upstream: client went away", "route", route, "err", err)
			return
		case isTimeout(err):
			status = http.StatusGatewayTimeout
		}
		p.log.Warn("upstream: forwarding failed", "route", route, "status", status, "err", err)
		writeUpstreamError(w, r, status)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

const (
	bodyUnavailableJSON = `{"error":"upstream_unavailable"}` + "\n"
	bodyTimeoutJSON     = `{"error":"upstream_timeout"}` + "\n"
	bodyUnavailableHTML = "<!doctype html>\n<title>502 Bad Gateway</title>\n<h1>Bad Gateway</h1>\n" +
		"<p>The service behind this page is unavailable. Please try again later.</p>\n"
	bodyTimeoutHTML = "<!doctype html>\n<title>504 Gateway Timeout</title>\n<h1>Gateway Timeout</h1>\n" +
		"<p>The service behind this page did not answer in time. Please try again later.</p>\n"
)

// writeUpstreamError writes a fixed 502/504 body: a tiny HTML page for clients that accept
// text/html, JSON otherwise.
func writeUpstreamError(w http.ResponseWriter, r *http.Request, status int) {
	html := strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
	var body, ctype string
	switch {
	case html && status == http.StatusGatewayTimeout:
		body, ctype = bodyTimeoutHTML, "text/html; charset=utf-8"
	case html:
		body, ctype = bodyUnavailableHTML, "text/html; charset=utf-8"
	case status == http.StatusGatewayTimeout:
		body, ctype = bodyTimeoutJSON, "application/json"
	default:
		body, ctype = bodyUnavailableJSON, "application/json"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
