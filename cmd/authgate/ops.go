package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsHandler serves the ops listener: liveness and readiness. (The session API and metrics
// are added by the operations work.)
func (a *app) opsHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	return mux
}

// readyz answers 200 when Redis, the database and the IdP discovery are reachable, else 503
// with JSON naming what is not.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	ok := true
	check := func(name string, err error) {
		if err != nil {
			status[name], ok = "unavailable", false
			return
		}
		status[name] = "ok"
	}
	check("sessions", a.sessions.Ping(ctx))
	check("database", a.users.Ping(ctx))
	check("idp", a.gw.PingIdP())
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(status)
}
