package users

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is what one case gets: a migrated store on a shared database, its clock, the database
// URL (to open a second store), and an issuer no other case uses.
type env struct {
	s      *Store
	clock  *fakeClock
	url    string
	issuer string
	tag    string // random, unique to the case
}

func (e env) profile(subject string) Profile {
	return Profile{Issuer: e.issuer, Subject: subject, Email: subject + "@example.com",
		EmailVerified: true, Name: "User " + subject, Roles: []string{"viewer"}, Groups: []string{"staff"}}
}

func mustUpsert(t *testing.T, s *Store, p Profile) User {
	t.Helper()
	u, err := s.Upsert(context.Background(), p)
	if err != nil {
		t.Fatalf("Upsert(%s/%s): %v", p.Issuer, p.Subject, err)
	}
	return u
}

func countRows(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.Get(&n, s.rebind(query), args...); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return n
}

// storeCases is the ONE table of behaviour run against every backend.
var storeCases = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{name: "upsert creates then updates", run: testUpsertCreatesThenUpdates},
	{name: "concurrent first logins make one row", run: testConcurrentFirstLogins},
	{name: "same subject at two issuers is two users", run: testTwoIssuers},
	{name: "disabled user round trip", run: testDisabledRoundTrip},
	{name: "granted roles survive upsert and merge", run: testGrantedRoles},
	{name: "find by email is case-insensitive", run: testFindByEmail},
	{name: "list is most recent login first", run: testList},
	{name: "audit events written and flushed on close", run: testAuditFlushedOnClose},
	{name: "audit events older than a cutoff are pruned in batches", run: testPruneAudit},
	{name: "audit retention prunes in the background", run: testRetentionLoop},
	{name: "migrate is idempotent", run: testMigrateIdempotent},
	{name: "unknown ids are not found", run: testNotFound},
	{name: "data errors are not unavailable", run: testDataErrors},
}

func TestStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			for i, tc := range storeCases {
				t.Run(tc.name, func(t *testing.T) {
					clock := newFakeClock(t0)
					tag := randomHex(t, 4)
					e := env{s: openStore(t, url, clock), clock: clock, url: url, tag: tag,
						issuer: fmt.Sprintf("https://idp-%d-%s.example.com/", i, tag)}
					tc.run(t, e)
				})
			}
		})
	}
}

func testUpsertCreatesThenUpdates(t *testing.T, e env) {
	first := mustUpsert(t, e.s, e.profile("alice"))
	if _, err := uuid.Parse(first.ID); err != nil {
		t.Fatalf("id %q is not a uuid: %v", first.ID, err)
	}
	if !first.CreatedAt.Equal(t0) || !first.LastLoginAt.Equal(t0) || !first.UpdatedAt.Equal(t0) {
		t.Errorf("times = %v/%v/%v, want all %v", first.CreatedAt, first.UpdatedAt, first.LastLoginAt, t0)
	}
	if first.Disabled || len(first.GrantedRoles) != 0 {
		t.Errorf("new user disabled=%v granted=%v, want false and none", first.Disabled, first.GrantedRoles)
	}

	e.clock.Advance(time.Hour)
	p := e.profile("alice")
	p.Email, p.Name, p.Roles, p.Groups = "alice.new@example.com", "Alice New", []string{"editor", "admin", "editor"}, nil
	second := mustUpsert(t, e.s, p)
	want := User{ID: first.ID, Issuer: e.issuer, Subject: "alice", Email: "alice.new@example.com",
		EmailVerified: true, Name: "Alice New", Roles: []string{"admin", "editor"}, Groups: []string{},
		GrantedRoles: []string{}, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), LastLoginAt: t0.Add(time.Hour)}
	assertUser(t, second, want)

	got, err := e.s.Get(context.Background(), first.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	assertUser(t, got, want)

	e.clock.Advance(time.Hour) // same profile again: only last_login_at moves
	third := mustUpsert(t, e.s, p)
	want.LastLoginAt = t0.Add(2 * time.Hour)
	assertUser(t, third, want)
}

func assertUser(t *testing.T, got, want User) {
	t.Helper()
	if got.ID != want.ID || got.Issuer != want.Issuer || got.Subject != want.Subject ||
		got.Email != want.Email || got.EmailVerified != want.EmailVerified || got.Name != want.Name ||
		got.Disabled != want.Disabled || !slices.Equal(got.Roles, want.Roles) ||
		!slices.Equal(got.Groups, want.Groups) || !slices.Equal(got.GrantedRoles, want.GrantedRoles) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		!got.LastLoginAt.Equal(want.LastLoginAt) {
		t.Errorf("user mismatch\n got: %+v\nwant: %+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC || got.LastLoginAt.Location() != time.UTC {
		t.Errorf("times not in UTC: %v, %v", got.CreatedAt.Location(), got.LastLoginAt.Location())
	}
}

func testConcurrentFirstLogins(t *testing.T, e env) {
	const n = 50
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			u, err := e.s.Upsert(context.Background(), e.profile("bob"))
			ids[i], errs[i] = u.ID, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Fatalf("login %d got id %s, login 0 got %s", i, ids[i], ids[0])
		}
	}
	if got := countRows(t, e.s, `SELECT count(*) FROM users WHERE issuer = ? AND subject = ?`, e.issuer, "bob"); got != 1 {
		t.Errorf("rows = %d, want 1", got)
	}
}

func testTwoIssuers(t *testing.T, e env) {
	a := mustUpsert(t, e.s, e.profile("carol"))
	other := e.profile("carol")
	other.Issuer = e.issuer + "other/"
	b := mustUpsert(t, e.s, other)
	if a.ID == b.ID {
		t.Fatalf("both issuers got id %s, want two users", a.ID)
	}
	n := countRows(t, e.s, `SELECT count(*) FROM users WHERE subject = ? AND issuer IN (?, ?)`,
		"carol", e.issuer, other.Issuer)
	if n != 2 {
		t.Errorf("rows = %d, want 2", n)
	}
}

func testDisabledRoundTrip(t *testing.T, e env) {
	ctx := context.Background()
	u := mustUpsert(t, e.s, e.profile("dave"))
	e.clock.Advance(time.Minute)
	disabled, err := e.s.SetDisabled(ctx, u.ID, true)
	if err != nil || !disabled.Disabled {
		t.Fatalf("SetDisabled(true) = %v, %v; want disabled", disabled.Disabled, err)
	}
	if got, err := e.s.Get(ctx, u.ID); err != nil || !got.Disabled {
		t.Fatalf("Get after disable = %v, %v; want disabled", got.Disabled, err)
	}
	e.clock.Advance(time.Minute) // a login attempt of a disabled user keeps it disabled
	again := mustUpsert(t, e.s, e.profile("dave"))
	if !again.Disabled || !again.LastLoginAt.Equal(u.LastLoginAt) {
		t.Errorf("upsert of disabled user: disabled=%v last_login=%v, want true and %v",
			again.Disabled, again.LastLoginAt, u.LastLoginAt)
	}
	enabled, err := e.s.SetDisabled(ctx, u.ID, false)
	if err != nil || enabled.Disabled {
		t.Fatalf("SetDisabled(false) = %v, %v; want enabled", enabled.Disabled, err)
	}
	if !enabled.UpdatedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("updated_at = %v, want %v", enabled.UpdatedAt, t0.Add(2*time.Minute))
	}
}

func testGrantedRoles(t *testing.T, e env) {
	ctx := context.Background()
	p := e.profile("erin")
	p.Roles = []string{"viewer", "editor"}
	u := mustUpsert(t, e.s, p)
	granted, err := e.s.GrantRoles(ctx, u.ID, []string{"admin", " viewer ", "admin", ""})
	if err != nil {
		t.Fatalf("GrantRoles: %v", err)
	}
	if want := []string{"admin", "viewer"}; !slices.Equal(granted.GrantedRoles, want) {
		t.Errorf("granted = %v, want %v", granted.GrantedRoles, want)
	}
	p.Roles = []string{"editor"}
	after := mustUpsert(t, e.s, p)
	if want := []string{"admin", "viewer"}; !slices.Equal(after.GrantedRoles, want) {
		t.Errorf("granted after upsert = %v, want %v", after.GrantedRoles, want)
	}
	if want := []string{"editor"}; !slices.Equal(after.Roles, want) {
		t.Errorf("idp roles after upsert = %v, want %v", after.Roles, want)
	}
	if got, want := after.EffectiveRoles(), []string{"admin", "editor", "viewer"}; !slices.Equal(got, want) {
		t.Errorf("EffectiveRoles = %v, want %v", got, want)
	}
	cleared, err := e.s.GrantRoles(ctx, u.ID, nil)
	if err != nil || len(cleared.GrantedRoles) != 0 {
		t.Errorf("GrantRoles(nil) = %v, %v; want none", cleared.GrantedRoles, err)
	}
}

func testFindByEmail(t *testing.T, e env) {
	p := e.profile("frank")
	p.Email = "Frank." + e.tag + "@Example.COM"
	u := mustUpsert(t, e.s, p)
	tests := []struct {
		query string
		want  int
	}{
		{query: p.Email, want: 1},
		{query: "frank." + e.tag + "@example.com", want: 1},
		{query: "FRANK." + e.tag + "@EXAMPLE.COM", want: 1},
		{query: "nobody-" + e.tag + "@example.com", want: 0},
		{query: "  frank." + e.tag + "@example.com ", want: 1},
	}
	for _, tt := range tests {
		got, err := e.s.FindByEmail(context.Background(), tt.query, 10)
		if err != nil {
			t.Fatalf("FindByEmail(%q): %v", tt.query, err)
		}
		if len(got) != tt.want || (tt.want == 1 && got[0].ID != u.ID) {
			t.Errorf("FindByEmail(%q) = %d users, want %d (id %s)", tt.query, len(got), tt.want, u.ID)
		}
	}
}

func testList(t *testing.T, e env) {
	e.clock.Advance(100 * 365 * 24 * time.Hour) // later than every other case's logins
	older := mustUpsert(t, e.s, e.profile("gina"))
	e.clock.Advance(time.Second)
	newer := mustUpsert(t, e.s, e.profile("hank"))
	got, err := e.s.List(context.Background(), 2)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 2 || got[0].ID != newer.ID || got[1].ID != older.ID {
		t.Errorf("List(2) = %v, want [%s %s]", ids(got), newer.ID, older.ID)
	}
}

func ids(us []User) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}
