package main

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authgate/authgate/metrics"
	"github.com/authgate/authgate/ops"
)

// opsHandler builds the ops listener: health, readiness, metrics, the session/user API and
// the operator page (package ops).
func (a *app) opsHandler(token string) (http.Handler, error) {
	return ops.New(ops.Options{
		Sessions: a.sessions,
		Users:    a.users,
		Token:    token,
		Ready: map[string]func(context.Context) error{
			"redis":    a.sessions.Ping,
			"database": a.users.Ping,
			"idp":      func(context.Context) error { return a.gw.PingIdP() },
		},
		Metrics:  promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}),
		Observer: a.metrics,
		Logger:   a.log.With("listener", "ops"),
	})
}

var _ ops.Observer = (*metrics.Metrics)(nil)
