package ops

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
)

// readyz runs every readiness check in parallel, each within readyTimeout, and answers 200
// with {"<name>":"ok",...} when all pass, else 503 with the failing ones "unavailable". The
// reason is logged, not returned.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query()["check"] // ?check=redis: a subset, e.g. for a Kubernetes readiness probe
	for _, name := range only {
		if _, ok := s.ready[name]; !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown_check", "message": "No readiness check has this name."})
			return
		}
	}
	results := make(map[string]string, len(s.ready))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range s.ready {
		if len(only) > 0 && !slices.Contains(only, name) {
			continue
		}
		wg.Go(func() {
			err := s.runCheck(r.Context(), check)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[name] = "unavailable"
				s.log.Warn("ops: readiness check failed", "check", name, "err", err)
				return
			}
			results[name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	for _, v := range results {
		if v != "ok" {
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, results)
}

// runCheck runs one check with its own deadline. A check that ignores its context still
// counts as failed once the deadline passes (its goroutine is left to finish on its own).
func (s *server) runCheck(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("ops: readiness check panicked: %v", p)
			}
		}()
		done <- check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
