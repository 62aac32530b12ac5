package users

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentLoginsReuseConnections: a burst of concurrent upserts (logins) keeps its
// connections open for the next burst instead of closing all but two of them.
func TestConcurrentLoginsReuseConnections(t *testing.T) {
	s := openStore(t, freshPostgres(t), newFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	burst := func(round int) {
		var wg sync.WaitGroup
		for i := range defaultPostgresConn * 2 {
			wg.Go(func() {
				p := Profile{Issuer: "https://idp.example", Subject: fmt.Sprintf("pool-%d-%d", round, i)}
				if _, err := s.Upsert(context.Background(), p); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	for round := range 5 {
		burst(round)
	}
	st := s.db.Stats()
	if st.MaxIdleClosed > 0 || st.OpenConnections > defaultPostgresConn {
		t.Errorf("pool stats %+v: connections were closed for lack of idle slots, or too many opened", st)
	}
}
