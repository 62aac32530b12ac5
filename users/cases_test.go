package users

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

func testAuditFlushedOnClose(t *testing.T, e env) {
	u := mustUpsert(t, e.s, e.profile("ivy"))
	// A second store on the same database, closed explicitly: Close must flush its queue.
	writer, err := Open(context.Background(), Options{URL: e.url, Now: e.clock.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	kinds := []string{KindLogin, KindAccessDenied, KindRefreshFailure, KindRevocation, KindLogout}
	const n = 25
	for i := range n {
		e.clock.Advance(time.Second)
		writer.Audit(Event{Kind: kinds[i%len(kinds)], UserID: u.ID, SessionHandle: "h" + e.tag,
			IP: "192.0.2.1", UserAgent: "test\x00agent", Route: "/admin/", Reason: "case"})
	}
	writer.Audit(Event{Kind: KindLoginFailure, UserID: "not-a-uuid", Reason: e.tag}) // stored with NULL user
	if err := writer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := writer.AuditStats(); st.Written != n+1 || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats = %+v, want %d written, none dropped or failed", st, n+1)
	}
	writer.Audit(Event{Kind: KindLogin}) // after Close: dropped, no panic
	if got := writer.AuditStats().Dropped; got != 1 {
		t.Errorf("dropped after close = %d, want 1", got)
	}

	if got := countRows(t, e.s, `SELECT count(*) FROM audit_events WHERE user_id = ?`, u.ID); got != n {
		t.Errorf("audit rows for user = %d, want %d", got, n)
	}
	if got := countRows(t, e.s, `SELECT count(*) FROM audit_events WHERE user_id IS NULL AND reason = ?`, e.tag); got != 1 {
		t.Errorf("audit rows without user = %d, want 1", got)
	}
	events, err := e.s.AuditEvents(context.Background(), u.ID, 3)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	want := Event{Time: t0.Add(n * time.Second), Kind: kinds[(n-1)%len(kinds)], UserID: u.ID,
		SessionHandle: "h" + e.tag, IP: "192.0.2.1", UserAgent: "testagent", Route: "/admin/", Reason: "case"}
	if len(events) != 3 || !events[0].Time.Equal(want.Time) || events[0].Kind != want.Kind ||
		events[0].UserID != want.UserID || events[0].SessionHandle != want.SessionHandle ||
		events[0].IP != want.IP || events[0].UserAgent != want.UserAgent || events[0].Route != want.Route ||
		events[0].Reason != want.Reason {
		t.Fatalf("AuditEvents(limit 3) = %+v, want 3 starting with %+v", events, want)
	}
	if !events[1].Time.Before(events[0].Time) || !events[2].Time.Before(events[1].Time) {
		t.Errorf("events not newest first: %v, %v, %v", events[0].Time, events[1].Time, events[2].Time)
	}
}

func testMigrateIdempotent(t *testing.T, e env) {
	ctx := context.Background()
	for i := range 2 {
		if err := e.s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+2, err)
		}
	}
	got, err := e.s.schemaVersion(ctx)
	if err != nil {
		t.Fatalf("schemaVersion: %v", err)
	}
	if want := latestVersion(t, e.s); got != want {
		t.Errorf("schema version = %d, want %d", got, want)
	}
}

func testNotFound(t *testing.T, e env) {
	ctx := context.Background()
	calls := []struct {
		name string
		call func(id string) error
	}{
		{name: "Get", call: func(id string) error { _, err := e.s.Get(ctx, id); return err }},
		{name: "SetDisabled", call: func(id string) error { _, err := e.s.SetDisabled(ctx, id, true); return err }},
		{name: "GrantRoles", call: func(id string) error { _, err := e.s.GrantRoles(ctx, id, []string{"x"}); return err }},
	}
	for _, c := range calls {
		for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
			err := c.call(id)
			if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
				t.Errorf("%s(%q) = %v, want ErrNotFound only", c.name, id, err)
			}
		}
	}
}

func testDataErrors(t *testing.T, e env) {
	u := mustUpsert(t, e.s, e.profile("jack"))
	_, err := e.s.Upsert(context.Background(), Profile{Issuer: e.issuer})
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("Upsert without subject = %v, want a validation error, not ErrUnavailable", err)
	}
	// An operator writing a non-array into roles violates a CHECK constraint.
	_, err = e.s.db.Exec(e.s.rebind(`UPDATE users SET roles = '{"a":1}' WHERE id = ?`), u.ID)
	if err == nil {
		t.Fatal("CHECK constraint on roles did not fire")
	}
	if wrapped := wrapErr("update", err); errors.Is(wrapped, ErrUnavailable) {
		t.Errorf("constraint violation %v classified as ErrUnavailable", wrapped)
	}
}

func testPruneAudit(t *testing.T, e env) {
	u := mustUpsert(t, e.s, e.profile("olga"))
	writer, err := Open(context.Background(), Options{URL: e.url, Now: e.clock.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	old := t0.Add(-1000 * time.Hour) // far older than any other case's rows
	for i := range 30 {
		at := old.Add(time.Duration(i) * time.Hour) // 10 rows before the cutoff below, 20 after
		writer.Audit(Event{Time: at, Kind: KindLogin, UserID: u.ID, Reason: e.tag})
	}
	if err := writer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cutoff := old.Add(10 * time.Hour)
	e.s.pruneBatch = 4 // 10 rows: batches of 4, 4, 2
	n, err := e.s.PruneAudit(context.Background(), cutoff)
	if err != nil {
		t.Fatalf("PruneAudit: %v", err)
	}
	if n < 10 {
		t.Errorf("PruneAudit removed %d rows, want at least this case's 10", n)
	}
	if got := countRows(t, e.s, `SELECT count(*) FROM audit_events WHERE reason = ?`, e.tag); got != 20 {
		t.Errorf("rows left = %d, want the 20 at or after the cutoff", got)
	}
	if got := countRows(t, e.s, `SELECT count(*) FROM audit_events WHERE reason = ? AND time < ?`, e.tag, cutoff.UTC()); got != 0 {
		t.Errorf("%d rows older than the cutoff survived", got)
	}
	if n, err := e.s.PruneAudit(context.Background(), cutoff); err != nil || n != 0 {
		t.Errorf("second PruneAudit = %d, %v; want 0, nil", n, err)
	}
}

// testRetentionLoop: a store opened with AuditRetention prunes once at start, then stops on Close.
func testRetentionLoop(t *testing.T, e env) {
	u := mustUpsert(t, e.s, e.profile("pia"))
	e.s.Audit(Event{Time: e.clock.Now().Add(-48 * time.Hour), Kind: KindLogin, UserID: u.ID, Reason: e.tag})
	e.s.Audit(Event{Time: e.clock.Now().Add(-1 * time.Hour), Kind: KindLogin, UserID: u.ID, Reason: e.tag})
	waitRows(t, e.s, e.tag, 2)
	pruner, err := Open(context.Background(), Options{URL: e.url, Now: e.clock.Now, Logger: testLogger(t),
		AuditRetention: 24 * time.Hour})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	waitRows(t, e.s, e.tag, 1) // the 48h-old row goes, the 1h-old one stays
	if err := pruner.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// waitRows waits (bounded) until exactly want audit rows carry reason tag.
func waitRows(t *testing.T, s *Store, tag string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := countRows(t, s, `SELECT count(*) FROM audit_events WHERE reason = ?`, tag)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit rows with tag = %d, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
