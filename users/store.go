// Package users is authgate's user store: every login upserts the user (keyed by issuer and
// subject) into Postgres (production) or SQLite (demo and tests) through sqlx, and audit events
// are written off the request path by a background writer. Migrations are embedded and applied
// by Store.Migrate.
//
// The per-request path of the gateway must never call this package: it is used at login, by
// the ops API and for audit events only.
package users

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Default values applied by Open for zero Options fields.
const (
	DefaultTimeout      = 3 * time.Second
	DefaultAuditBuffer  = 1024
	defaultPostgresConn = 10
	defaultSQLiteConn   = 4
	sqliteBusyTimeoutMS = 5000
)

// Options configures Open. Only URL is required.
type Options struct {
	// URL is postgres://..., postgresql://..., sqlite:PATH or sqlite::memory:.
	URL string
	// Timeout bounds every database call (default 3s). It is applied on top of the caller's
	// context, so the earlier deadline wins.
	Timeout time.Duration
	// MaxOpenConns caps the connection pool (default 10 for Postgres, 4 for a SQLite file;
	// always 1 for sqlite::memory:).
	MaxOpenConns int
	// AuditBuffer is the capacity of the audit queue (default 1024). Events beyond it are
	// dropped and counted, never waited for.
	AuditBuffer int
	// Logger receives warnings (dropped or failed audit events, migrations). Default: discard.
	Logger *slog.Logger
	// Now is the clock (default time.Now). Times are stored in UTC, truncated to microseconds.
	Now func() time.Time
	// AuditRetention, when > 0, deletes audit events older than this about once an hour (and
	// once right after Open) in the background; 0 keeps them forever. See PruneAudit.
	AuditRetention time.Duration
}

// Store is the user store. It is safe for concurrent use. Create it with Open, call Migrate
// once at start-up (or run `authgate migrate`), and Close it at shutdown to flush audit events.
type Store struct {
	db         *sqlx.DB
	postgres   bool
	timeout    time.Duration
	log        *slog.Logger
	now        func() time.Time
	audit      *auditWriter
	migrateMu  sync.Mutex
	closeOnce  sync.Once
	closeErr   error
	retention  *retention // nil without Options.AuditRetention
	pruneBatch int        // rows per DELETE in PruneAudit
}

// Open validates opts and prepares the connection pool. It does NOT connect: the database may
// be down at start-up, and every later call reports ErrUnavailable until it is back. The caller
// must call Close. ctx is unused today and kept for symmetry with the other I/O calls.
func Open(ctx context.Context, opts Options) (*Store, error) {
	_ = ctx
	driverName, dsn, memory, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	db, err := sqlx.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("users: open: %w", err)
	}
	s := &Store{
		db:       db,
		postgres: driverName == "pgx",
		timeout:  opts.Timeout,
		log:      opts.Logger,
		now:      opts.Now,

		pruneBatch: defaultPruneBatch,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	conns := maxConns(opts.MaxOpenConns, s.postgres, memory)
	db.SetMaxOpenConns(conns)
	// Keep the whole pool idle between logins: database/sql keeps 2 by default, so concurrent
	// logins closed and reopened Postgres connections (a backend fork and a statement prepare each).
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if memory {
		db.SetConnMaxIdleTime(0) // the in-memory database lives as long as its connection
	}
	buffer := opts.AuditBuffer
	if buffer <= 0 {
		buffer = DefaultAuditBuffer
	}
	s.audit = newAuditWriter(buffer, s.log, s.clock, s.insertEvents)
	s.audit.start()
	s.startRetention(opts.AuditRetention, time.Hour)
	return s, nil
}

func maxConns(n int, postgres, memory bool) int {
	switch {
	case memory:
		return 1
	case n > 0:
		return n
	case postgres:
		return defaultPostgresConn
	default:
		return defaultSQLiteConn
	}
}

// parseURL maps the configured URL to a database/sql driver name and DSN.
func parseURL(raw string) (driverName, dsn string, memory bool, err error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		// Parse now (no connection) so a malformed URL fails at start-up, not at the first
		// login. pgx redacts the password in its error.
		if _, err := pgx.ParseConfig(raw); err != nil {
			return "", "", false, fmt.Errorf("users: open: invalid postgres URL: %w", err)
		}
		return "pgx", raw, false, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		switch {
		case path == "":
			return "", "", false, errors.New("users: open: sqlite URL without a path (use sqlite:PATH or sqlite::memory:)")
		case strings.ContainsAny(path, "?#"):
			return "", "", false, errors.New("users: open: sqlite path must not contain '?' or '#'")
		case path == ":memory:":
			// A named shared-cache memory database: every pooled connection sees the same data,
			// and the random name keeps two Stores in one process apart.
			name := "authgate-" + uuid.NewString()
			return "sqlite", "file:" + name + "?mode=memory&cache=shared" + sqlitePragmas(false), true, nil
		default:
			return "sqlite", path + "?" + strings.TrimPrefix(sqlitePragmas(true), "&"), false, nil
		}
	case raw == "":
		return "", "", false, errors.New("users: open: database URL is empty")
	default:
		return "", "", false, errors.New("users: open: database URL must start with postgres://, postgresql:// or sqlite:")
	}
}

// sqlitePragmas returns the DSN parameters every SQLite connection gets: busy_timeout so writers
// wait for each other, WAL for files, foreign keys, immediate transactions (so concurrent
// migrators serialise at BEGIN), and a sortable UTC text time format.
func sqlitePragmas(file bool) string {
	p := fmt.Sprintf("&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_txlock=immediate&_time_format=sqlite",
		sqliteBusyTimeoutMS)
	if file {
		p += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	return p
}

// clock returns the current time in UTC, truncated to what Postgres stores (microseconds), so
// values returned by the store equal the values read back later.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// withTimeout bounds one database call by Options.Timeout.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Ping checks that the database answers within Options.Timeout. It returns an error wrapping
// ErrUnavailable when it does not. For readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return wrapErr("ping", s.db.PingContext(ctx))
}

// Close stops accepting audit events, flushes the queued ones (bounded by 3×Timeout; what is
// left then is dropped and counted), and closes the connection pool. Safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.retention.close()
		s.audit.close(3 * s.timeout)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("users: close: %w", err)
		}
	})
	return s.closeErr
}

// rebind converts ?-placeholders to the dialect's ($1 for Postgres).
func (s *Store) rebind(query string) string {
	return s.db.Rebind(query)
}
