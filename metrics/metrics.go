// Package metrics holds authgate's Prometheus metrics. New registers them on a registry the
// caller owns (never the global default registry) and returns a value that the gateway uses
// as its Observer; serve the registry with promhttp.HandlerFor on the ops listener.
package metrics

import (
	"sync"
	"sync/atomic"
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

	// series resolves the children of requests and latency once per route and class, so a
	// request costs a map lookup rather than label hashing. Copy-on-write under mu.
	mu     sync.Mutex
	series atomic.Pointer[map[string]*requestSeries]
}

// requestSeries are one route's resolved children; never modified once published.
type requestSeries struct {
	codes   [len(classNames)]prometheus.Counter // nil until the class is first seen
	latency prometheus.Observer
}

// maxSeriesRoutes bounds the routes whose children are kept resolved (route names come from
// the configuration; beyond this, requests resolve their children each time).
const maxSeriesRoutes = 1024

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

// classNames are the code label values: a status class, or "other" (index 0) for a status
// outside 100-599, keeping cardinality fixed.
var classNames = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// codeClass maps a status to its index in classNames.
func codeClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// ObserveRequest counts a request and its duration.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "none"
	}
	c := codeClass(status)
	s := m.seriesOf(route, c)
	s.codes[c].Inc()
	s.latency.Observe(d.Seconds())
}

// seriesOf returns route's resolved children, with the counter of class c.
func (m *Metrics) seriesOf(route string, c int) *requestSeries {
	if all := m.series.Load(); all != nil {
		if s := (*all)[route]; s != nil && s.codes[c] != nil {
			return s
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var all map[string]*requestSeries
	if p := m.series.Load(); p != nil {
		all = *p
	}
	s := &requestSeries{}
	old := all[route]
	if old != nil {
		if old.codes[c] != nil {
			return old
		}
		*s = *old
	} else {
		s.latency = m.latency.WithLabelValues(route)
	}
	s.codes[c] = m.requests.WithLabelValues(route, classNames[c])
	if old == nil && len(all) >= maxSeriesRoutes {
		return s // resolved for this request only
	}
	next := make(map[string]*requestSeries, len(all)+1)
	for k, v := range all {
		next[k] = v
	}
	next[route] = s
	m.series.Store(&next)
	return s
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
