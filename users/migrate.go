package users

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationsFS holds the goose migrations: one directory per dialect, because column types
// differ (uuid/jsonb/timestamptz on Postgres, text on SQLite). Migrations are forward-only and
// never edited once released.
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationsFS embed.FS

const (
	// migrationTable is goose's version table; authgate's own name so it can share a database
	// with an application that also uses goose.
	migrationTable = "authgate_schema_migrations"
	// migrationLockID is the Postgres advisory lock key held while migrating
	// (the first 8 bytes of "authgate" as a big-endian int64).
	migrationLockID = 0x6175746867617465
	// migrateTimeout bounds Migrate: it may wait for another instance that holds the lock.
	migrateTimeout = 2 * time.Minute
)

// Migrate applies the embedded migrations that are not applied yet. It is idempotent, and safe
// when several instances run it at once: on Postgres a session-level advisory lock serialises
// them; SQLite serialises writers itself. It is bounded by 2 minutes (on top of ctx), because it
// may wait for another migrating instance. Run it before serving (config database.auto_migrate
// or `authgate migrate`).
func (s *Store) Migrate(ctx context.Context) error {
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()

	p, err := s.migrationProvider()
	if err != nil {
		return fmt.Errorf("users: migrate: %w", err)
	}
	results, err := p.Up(ctx)
	// SQLite has no advisory lock: a second process that migrates at the same moment waits on
	// the database lock (busy_timeout), then fails because the first one already applied the
	// migration. A fresh attempt sees it applied, so retry a few times.
	for attempt := 1; err != nil && !s.postgres && attempt < 8 && ctx.Err() == nil; attempt++ {
		if p, err = s.migrationProvider(); err == nil {
			results, err = p.Up(ctx)
		}
	}
	if err != nil {
		return wrapErr("migrate", err)
	}
	for _, r := range results {
		s.log.Info("users: migration applied", "version", r.Source.Version, "file", r.Source.Path,
			"duration", r.Duration)
	}
	return nil
}

// migrationProvider builds a goose provider for the store's dialect.
func (s *Store) migrationProvider() (*goose.Provider, error) {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	if s.postgres {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
	}
	sub, err := fs.Sub(migrationsFS, dir)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationTable),
		goose.WithDisableGlobalRegistry(true),
	}
	if s.postgres {
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(migrationLockID),
			lock.WithLockTimeout(1, uint64(migrateTimeout/time.Second)), // poll every second
		)
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, s.db.DB, sub, opts...)
}

// schemaVersion returns the highest applied migration version (0 when none).
func (s *Store) schemaVersion(ctx context.Context) (int64, error) {
	p, err := s.migrationProvider()
	if err != nil {
		return 0, fmt.Errorf("users: schema version: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := p.GetDBVersion(ctx)
	return v, wrapErr("schema version", err)
}
