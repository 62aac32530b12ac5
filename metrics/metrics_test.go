package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ObserveRequest("admin", 403, time.Millisecond)
	m.ObserveRequest("admin", 404, time.Millisecond)
	m.ObserveRequest("", 200, time.Millisecond)
	m.ObserveLogin("success")
	m.ObserveRevocation("logout", 2)
	m.ObserveStoreError("sessions")
	want := `
# HELP authgate_requests_total Requests of the main listener by route and status class.
# TYPE authgate_requests_total counter
authgate_requests_total{code="2xx",route="none"} 1
authgate_requests_total{code="4xx",route="admin"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authgate_requests_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.revocations.WithLabelValues("logout")); got != 2 {
		t.Errorf("revocations = %v", got)
	}
	if got := testutil.ToFloat64(m.logins.WithLabelValues("success")); got != 1 {
		t.Errorf("logins = %v", got)
	}
}
