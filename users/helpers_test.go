package users

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const pgAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// fakeClock is an injected clock that only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// skipOrFail skips when a required service is missing locally, but fails in CI.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	return hex.EncodeToString(b)
}

// freshPostgres creates an empty database for this test and drops it (WITH (FORCE)) in Cleanup.
func freshPostgres(t *testing.T) string {
	t.Helper()
	admin, err := sql.Open("pgx", pgAdminURL)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		skipOrFail(t, "postgres not reachable at 127.0.0.1:5432: %v", err)
	}
	name := "authgate_test_" + randomHex(t, 8)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
}

// freshSQLite returns a sqlite: URL of a new file in the test's temp dir.
func freshSQLite(t *testing.T) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "authgate.db")
}

// backend is one database the shared case table runs against.
type backend struct {
	name string
	url  func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{name: "sqlite", url: freshSQLite},
		{name: "postgres", url: freshPostgres},
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// openStore opens and migrates a store on url with clock; it is closed in Cleanup.
func openStore(t *testing.T, url string, clock *fakeClock) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url, Now: clock.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// latestVersion is the highest migration version embedded for the store's dialect.
func latestVersion(t *testing.T, s *Store) int64 {
	t.Helper()
	p, err := s.migrationProvider()
	if err != nil {
		t.Fatalf("migration provider: %v", err)
	}
	sources := p.ListSources()
	if len(sources) == 0 {
		t.Fatal("no embedded migrations")
	}
	return sources[len(sources)-1].Version
}
