package users

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// TestMigrateConcurrent runs 5 instances (separate pools) migrating one fresh database at once:
// all must succeed and the schema must end at the latest version.
func TestMigrateConcurrent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			const instances = 5
			stores := make([]*Store, instances)
			for i := range stores {
				s, err := Open(context.Background(), Options{URL: url, Logger: testLogger(t)})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				stores[i] = s
			}
			errs := make([]error, instances)
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(context.Background()) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: Migrate: %v", i, err)
				}
			}
			got, err := stores[0].schemaVersion(context.Background())
			if err != nil {
				t.Fatalf("schemaVersion: %v", err)
			}
			if want := latestVersion(t, stores[0]); got != want {
				t.Errorf("schema version = %d, want %d", got, want)
			}
			if n := countRows(t, stores[0], `SELECT count(*) FROM `+migrationTable+` WHERE version_id > 0`); n != int(got) {
				t.Errorf("applied migration rows = %d, want %d (each applied once)", n, got)
			}
		})
	}
}

func TestSQLiteMemorySharedAcrossConnections(t *testing.T) {
	clock := newFakeClock(t0)
	s := openStore(t, "sqlite::memory:", clock)
	other := openStore(t, "sqlite::memory:", clock)
	u := mustUpsert(t, s, Profile{Issuer: "https://idp.example.com/", Subject: "mem"})
	got, err := s.Get(context.Background(), u.ID)
	if err != nil || got.ID != u.ID {
		t.Fatalf("Get = %v, %v; want %s", got.ID, err, u.ID)
	}
	if list, err := other.List(context.Background(), 10); err != nil || len(list) != 0 {
		t.Errorf("second memory store sees %d users (err %v), want its own empty database", len(list), err)
	}
	if st := s.db.Stats(); st.MaxOpenConnections != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", st.MaxOpenConnections)
	}
}

func TestSQLiteFilePragmas(t *testing.T) {
	s := openStore(t, freshSQLite(t), newFakeClock(t0))
	tests := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "busy_timeout", want: "5000"},
		{pragma: "foreign_keys", want: "1"},
	}
	for _, tt := range tests {
		var got string
		if err := s.db.Get(&got, "PRAGMA "+tt.pragma); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		wantDriver string
		wantMemory bool
		wantErr    bool
	}{
		{name: "postgres", url: "postgres://u@h/db", wantDriver: "pgx"},
		{name: "postgresql", url: "postgresql://u@h/db", wantDriver: "pgx"},
		{name: "sqlite file", url: "sqlite:/tmp/a.db", wantDriver: "sqlite"},
		{name: "sqlite triple slash", url: "sqlite:///tmp/a.db", wantDriver: "sqlite"},
		{name: "sqlite memory", url: "sqlite::memory:", wantDriver: "sqlite", wantMemory: true},
		{name: "sqlite without path", url: "sqlite:", wantErr: true},
		{name: "sqlite path with query", url: "sqlite:/tmp/a.db?mode=ro", wantErr: true},
		{name: "empty", url: "", wantErr: true},
		{name: "mysql", url: "mysql://u@h/db", wantErr: true},
		{name: "postgres bad port", url: "postgres://u:pw@h:notaport/db", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			driverName, _, memory, err := parseURL(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseURL(%q) err = %v, wantErr %v", tt.url, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error %q leaks the password", err)
			}
			if driverName != tt.wantDriver || memory != tt.wantMemory {
				t.Errorf("parseURL(%q) = %q memory=%v, want %q memory=%v", tt.url, driverName, memory, tt.wantDriver, tt.wantMemory)
			}
		})
	}
}
