// Package metrics holds authgate's Prometheus metrics. New registers them on a registry the
// caller owns (never the global default registry) and returns a value that the gateway uses
// as its Observer; serve the registry with promhttp.HandlerFor on the ops listener.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the gateway observes. Safe for concurrent use.
type Metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
	revocations *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_requests_total", Help: "Requests of the main listener by route and status class.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authgate_request_duration_seconds", Help: "Time to answer a request, by route (upstream time included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_logins_total", Help: "Login outcomes: success or the failure reason.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_token_refreshes_total", Help: "Access token refreshes by result.",
		}, []string{"result"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_session_revocations_total", Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_store_errors_total", Help: "Failures to reach a backing store.",
		}, []string{"store"}),
	}
	reg.MustRegister(m.requests, m.latency, m.logins, m.refreshes, m.revocations, m.storeErrors)
	return m
}

// codeClass maps a status to its class label ("2xx"), keeping cardinality fixed.
func codeClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// ObserveRequest counts a request and its duration.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "none"
	}
	m.requests.WithLabelValues(route, codeClass(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveLogin counts a login outcome.
func (m *Metrics) ObserveLogin(result string) { m.logins.WithLabelValues(result).Inc() }

// ObserveRefresh counts a token refresh outcome.
func (m *Metrics) ObserveRefresh(result string) { m.refreshes.WithLabelValues(result).Inc() }

// ObserveRevocation counts ended sessions.
func (m *Metrics) ObserveRevocation(reason string, n int) {
	m.revocations.WithLabelValues(reason).Add(float64(n))
}

// ObserveStoreError counts a store failure.
func (m *Metrics) ObserveStoreError(store string) { m.storeErrors.WithLabelValues(store).Inc() }
