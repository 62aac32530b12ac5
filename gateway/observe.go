package gateway

import (
	"log/slog"
	"net/http"
	"time"
)

// Observer receives what the gateway counts. Every method must be cheap and safe for
// concurrent use (cmd/authgate backs it with Prometheus metrics). result and reason values are
// short fixed words, never user input.
type Observer interface {
	// ObserveRequest is called once per request of the main listener, after it was answered.
	// route is the route name, "auth" for the gateway's own endpoints, or "" when none matched.
	ObserveRequest(route string, status int, d time.Duration)
	// ObserveLogin counts login outcomes: "success" or the failure code.
	ObserveLogin(result string)
	// ObserveRefresh counts token refreshes: "success", "refused", "error".
	ObserveRefresh(result string)
	// ObserveRevocation counts sessions ended by logout or revocation, by reason.
	ObserveRevocation(reason string, n int)
	// ObserveStoreError counts failures of a backing store: "sessions" or "users".
	ObserveStoreError(store string)
}

// nopObserver is the Observer when none is configured.
type nopObserver struct{}

func (nopObserver) ObserveRequest(string, int, time.Duration) {}
func (nopObserver) ObserveLogin(string)                       {}
func (nopObserver) ObserveRefresh(string)                     {}
func (nopObserver) ObserveRevocation(string, int)             {}
func (nopObserver) ObserveStoreError(string)                  {}

// recorder wraps the ResponseWriter of one request to learn its status and to carry what the
// access log needs (route, user). Unwrap lets http.ResponseController reach Flush and Hijack,
// which streaming and WebSocket proxying need.
type recorder struct {
	http.ResponseWriter
	status int
	route  string
	userID string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// noteRoute and noteUser record, for the access log, what the request path decided.
func noteRoute(w http.ResponseWriter, route string) {
	if rec, ok := w.(*recorder); ok {
		rec.route = route
	}
}

func noteUser(w http.ResponseWriter, userID string) {
	if rec, ok := w.(*recorder); ok {
		rec.userID = userID
	}
}

// observe is the outermost middleware: request id, one access-log line and the request
// metrics. The log line never has a query string (the callback's carries the code and state),
// a cookie or a token.
func (g *Gateway) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// One allocation for the recorder and the request id's header values.
		st := &struct {
			recorder
			ids [2]string
		}{recorder: recorder{ResponseWriter: w}}
		rec := &st.recorder
		id := r.Header.Get("X-Request-Id")
		if validRequestID(id) {
			st.ids[1] = id
		} else {
			id = g.ids.next()
			st.ids[0], st.ids[1] = id, id
			r.Header["X-Request-Id"] = st.ids[0:1:1]
		}
		w.Header()["X-Request-Id"] = st.ids[1:2:2]
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		end := time.Now()
		d := end.Sub(start)
		g.obs.ObserveRequest(rec.route, rec.status, d)
		if !g.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		if g.access != nil {
			g.access.write(&accessLine{time: end, requestID: id, method: r.Method, path: r.URL.Path,
				route: rec.route, status: rec.status, duration: d, userID: rec.userID, ip: g.clientAddr(r)})
			return
		}
		g.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", rec.route), slog.Int("status", rec.status),
			slog.Duration("duration", d), slog.String("user_id", rec.userID), slog.String("ip", g.clientIP(r)))
	})
}

// validRequestID accepts a client's X-Request-Id only when it is short and plain.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
