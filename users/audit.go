package users

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Audit event kinds (Event.Kind).
const (
	KindLogin          = "login"
	KindLoginFailure   = "login_failure"
	KindLogout         = "logout"
	KindRefreshFailure = "refresh_failure"
	KindRevocation     = "revocation"
	KindAccessDenied   = "access_denied"
	KindUserDisabled   = "user_disabled"
)

// maxAuditBatch is the most events written by one INSERT.
const maxAuditBatch = 100

// Event is one row of audit_events. Kind is one of the Kind* constants; UserID is a user id or
// empty (stored as NULL; a value that is not a uuid is also stored as NULL). SessionHandle is
// the session's handle, never the cookie value. Never put tokens or secrets in Reason.
// Time defaults to the store's clock when zero.
type Event struct {
	Time          time.Time
	Kind          string
	UserID        string
	SessionHandle string
	IP            string
	UserAgent     string
	Route         string
	Reason        string
}

// AuditStats counts what happened to audit events since Open.
type AuditStats struct {
	Written uint64 // rows inserted
	Dropped uint64 // refused because the queue was full or the store closed, or cut off by Close's bound
	Failed  uint64 // the insert failed (database down or bad data)
}

// Audit queues e for the background writer and returns at once: it never blocks and never
// fails. When the queue is full (Options.AuditBuffer) or the store is closed the event is
// dropped, counted in AuditStats and logged at warn level (at most once a second).
func (s *Store) Audit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.clock()
	}
	s.audit.enqueue(e)
}

// AuditStats returns the audit counters, e.g. for metrics.
func (s *Store) AuditStats() AuditStats {
	return s.audit.stats()
}

// AuditEvents returns the audit events of one user (all events when userID is empty), newest
// first. limit <= 0 means DefaultListLimit; it is capped at MaxListLimit. Events still queued
// are not visible yet. For the ops API and tests.
func (s *Store) AuditEvents(ctx context.Context, userID string, limit int) ([]Event, error) {
	query := `SELECT time, kind, user_id, session_handle, ip, user_agent, route, reason FROM audit_events`
	args := []any{}
	if userID != "" {
		uid, err := uuid.Parse(userID)
		if err != nil {
			return []Event{}, nil
		}
		query += ` WHERE user_id = ?`
		args = append(args, uid.String())
	}
	query += ` ORDER BY time DESC, id DESC LIMIT ?`
	args = append(args, clampLimit(limit))

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var rows []eventRow
	if err := s.db.SelectContext(ctx, &rows, s.rebind(query), args...); err != nil {
		return nil, wrapErr("audit events", err)
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.event())
	}
	return out, nil
}

type eventRow struct {
	Time          dbTime  `db:"time"`
	Kind          string  `db:"kind"`
	UserID        *string `db:"user_id"`
	SessionHandle string  `db:"session_handle"`
	IP            string  `db:"ip"`
	UserAgent     string  `db:"user_agent"`
	Route         string  `db:"route"`
	Reason        string  `db:"reason"`
}

func (r eventRow) event() Event {
	e := Event{Time: r.Time.Time, Kind: r.Kind, SessionHandle: r.SessionHandle, IP: r.IP,
		UserAgent: r.UserAgent, Route: r.Route, Reason: r.Reason}
	if r.UserID != nil {
		e.UserID = *r.UserID
	}
	return e
}

// insertEvents writes one batch with a single multi-row INSERT.
func (s *Store) insertEvents(ctx context.Context, events []Event) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_events (time, kind, user_id, session_handle, ip, user_agent, route, reason) VALUES `)
	args := make([]any, 0, 8*len(events))
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		var userID any
		if uid, err := uuid.Parse(e.UserID); err == nil {
			userID = uid.String()
		}
		args = append(args, e.Time.UTC().Truncate(time.Microsecond), clean(e.Kind, 64), userID,
			clean(e.SessionHandle, 128), clean(e.IP, 64), clean(e.UserAgent, 512),
			clean(e.Route, 1024), clean(e.Reason, 1024))
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, s.rebind(b.String()), args...)
	return wrapErr("write audit events", err)
}

// clean makes a caller-supplied string storable: valid UTF-8, no NUL (Postgres rejects it),
// at most max bytes.
func clean(v string, max int) string {
	v = strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "")
	if len(v) <= max {
		return v
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// auditWriter is the background writer: a buffered channel drained by one goroutine that
// inserts whatever is queued in batches. Sends never block.
type auditWriter struct {
	mu       sync.RWMutex // guards closed against a send on a closed channel
	closed   bool
	ch       chan Event
	done     chan struct{}
	abort    context.Context // cancelled when Close's flush bound passes
	cancel   context.CancelFunc
	insert   func(context.Context, []Event) error
	log      *slog.Logger
	now      func() time.Time
	lastWarn atomic.Int64 // unix nanoseconds of the last "dropped" warning
	written  atomic.Uint64
	dropped  atomic.Uint64
	failed   atomic.Uint64
}

func newAuditWriter(buffer int, log *slog.Logger, now func() time.Time,
	insert func(context.Context, []Event) error) *auditWriter {
	abort, cancel := context.WithCancel(context.Background())
	return &auditWriter{ch: make(chan Event, buffer), done: make(chan struct{}), abort: abort,
		cancel: cancel, insert: insert, log: log, now: now}
}

func (w *auditWriter) start() { go w.run() }

func (w *auditWriter) enqueue(e Event) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.closed {
		select {
		case w.ch <- e:
			return
		default:
		}
	}
	n := w.dropped.Add(1)
	now := w.now().UnixNano()
	last := w.lastWarn.Load()
	if now-last >= int64(time.Second) && w.lastWarn.CompareAndSwap(last, now) {
		w.log.Warn("users: audit event dropped (queue full or store closed)",
			"kind", e.Kind, "dropped_total", n, "closed", w.closed)
	}
}

func (w *auditWriter) stats() AuditStats {
	return AuditStats{Written: w.written.Load(), Dropped: w.dropped.Load(), Failed: w.failed.Load()}
}

// run drains the queue until it is closed and empty.
func (w *auditWriter) run() {
	defer close(w.done)
	batch := make([]Event, 0, maxAuditBatch)
	for e := range w.ch {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < maxAuditBatch {
			select {
			case e, ok := <-w.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		w.write(batch)
	}
}

// write inserts one batch. When the batch fails for a reason other than an unreachable database
// (one bad row), the rows are retried one by one so the others are kept.
func (w *auditWriter) write(batch []Event) {
	if w.abort.Err() != nil {
		w.dropped.Add(uint64(len(batch)))
		return
	}
	err := w.insert(w.abort, batch)
	if err == nil {
		w.written.Add(uint64(len(batch)))
		return
	}
	if len(batch) == 1 || isUnavailable(err) {
		w.failed.Add(uint64(len(batch)))
		w.log.Warn("users: audit events not written", "count", len(batch), "err", err)
		return
	}
	for _, e := range batch {
		w.write([]Event{e})
	}
}

// close stops new events and waits until everything queued is written, or until bound passes;
// then the in-flight insert is cancelled and the rest is dropped (and counted).
func (w *auditWriter) close(bound time.Duration) {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	w.mu.Unlock()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
		w.cancel()
		<-w.done
		w.log.Warn("users: audit flush cut off at close", "bound", bound, "dropped_total", w.dropped.Load())
	}
	w.cancel()
}
