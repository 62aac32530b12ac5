package metrics

import (
	"fmt"
	"strings"
	"sync"
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

// TestObserveRequestSeries checks the resolved children: every class of every route counts
// into its own series, statuses outside 100-599 count as "other", latencies by route, also
// with requests racing to resolve the same new series and past the bound of resolved routes.
func TestObserveRequestSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	statuses := []int{200, 204, 302, 404, 503, 99, 600, 101}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, st := range statuses {
				m.ObserveRequest("app", st, time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < maxSeriesRoutes+5; i++ {
		m.ObserveRequest(fmt.Sprintf("r%d", i), 200, time.Millisecond)
		m.ObserveRequest(fmt.Sprintf("r%d", i), 500, time.Millisecond)
	}
	m.ObserveRequest(fmt.Sprintf("r%d", maxSeriesRoutes+4), 200, time.Millisecond)
	for _, tt := range []struct {
		route, code string
		want        float64
	}{
		{"app", "2xx", 8}, {"app", "3xx", 4}, {"app", "4xx", 4}, {"app", "5xx", 4},
		{"app", "other", 8}, {"app", "1xx", 4},
		{"r0", "2xx", 1}, {"r0", "5xx", 1},
		{fmt.Sprintf("r%d", maxSeriesRoutes+4), "2xx", 2},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tt.route, tt.code)); got != tt.want {
			t.Errorf("requests{route=%q,code=%q} = %v, want %v", tt.route, tt.code, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 6+2*(maxSeriesRoutes+5) {
		t.Errorf("%d request series, want %d", n, 6+2*(maxSeriesRoutes+5))
	}
	if n := len(*m.series.Load()); n != maxSeriesRoutes {
		t.Errorf("%d resolved routes, want the bound %d", n, maxSeriesRoutes)
	}
	h, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range h {
		if mf.GetName() != "authgate_request_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() == "app" && mt.GetHistogram().GetSampleCount() != 32 {
				t.Errorf("app latency count = %d, want 32", mt.GetHistogram().GetSampleCount())
			}
		}
	}
}
