package ops

import (
	"context"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/users"
	"github.com/redis/go-redis/v9"
)

// TestStoresUnavailable: Redis or the database down answers 503 with a fixed message, counts a
// store error, and never lets a change half-happen silently.
func TestStoresUnavailable(t *testing.T) {
	ctx := context.Background()
	deadClient := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = deadClient.Close() })
	deadSessions, err := session.NewRedis(deadClient, session.Options{Secrets: [][]byte{fixture.Secret()}, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	deadUsers, err := users.Open(ctx, users.Options{URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deadUsers.Close() })
	liveUsers, err := users.Open(ctx, users.Options{URL: "sqlite::memory:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = liveUsers.Close() })
	if err := liveUsers.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := liveUsers.Upsert(ctx, users.Profile{Issuer: "https://idp.example.com/", Subject: "sub-mia", Email: "mia@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	liveSessions, err := session.NewMemory(session.Options{Secrets: [][]byte{fixture.Secret()}, Secure: true})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name            string
		sessions        SessionStore
		users           UserStore
		method, path    string
		body            string
		wantStatus      int
		wantCode        string
		wantStoreErrors map[string]int
	}{
		{name: "list sessions, redis down", sessions: deadSessions, users: liveUsers, method: "GET", path: "/api/sessions",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"sessions": 1}},
		{name: "revoke, redis down", sessions: deadSessions, users: liveUsers, method: "DELETE", path: "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"sessions": 1}},
		{name: "sessions by email, database down", sessions: liveSessions, users: deadUsers, method: "GET", path: "/api/sessions?email=mia@example.com",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"users": 1}},
		{name: "sessions by user id, database down", sessions: liveSessions, users: deadUsers, method: "GET", path: "/api/sessions?user_id=" + u.ID,
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"users": 1}},
		{name: "revoke a user's sessions, database down", sessions: liveSessions, users: deadUsers, method: "DELETE", path: "/api/users/" + u.ID + "/sessions",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"users": 1}},
		{name: "revoke a user's sessions, redis down", sessions: deadSessions, users: liveUsers, method: "DELETE", path: "/api/users/" + u.ID + "/sessions",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"sessions": 1}},
		{name: "list users, database down", sessions: liveSessions, users: deadUsers, method: "GET", path: "/api/users",
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"users": 1}},
		{name: "disable, database down", sessions: liveSessions, users: deadUsers, method: "PATCH", path: "/api/users/" + u.ID, body: `{"disabled":true}`,
			wantStatus: 503, wantCode: "unavailable", wantStoreErrors: map[string]int{"users": 1}},
		{name: "disable, redis down", sessions: deadSessions, users: liveUsers, method: "PATCH", path: "/api/users/" + u.ID, body: `{"disabled":true}`,
			wantStatus: 503, wantCode: "revocation_failed", wantStoreErrors: map[string]int{"sessions": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := newCountingObserver()
			h, err := New(Options{Sessions: tt.sessions, Users: tt.users, Token: testToken, Observer: obs})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer "+testToken)
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), `"error":"`+tt.wantCode+`"`) {
				t.Errorf("status %d body %s, want %d %s", w.Code, w.Body, tt.wantStatus, tt.wantCode)
			}
			// The message names the store that failed (the operator's next step differs).
			if want := map[bool]string{true: "(Redis)", false: "database"}[tt.wantStoreErrors["sessions"] > 0]; tt.wantCode == "unavailable" && !strings.Contains(w.Body.String(), want) {
				t.Errorf("body %s does not name the store (%q)", w.Body, want)
			}
			if strings.Contains(w.Body.String(), "127.0.0.1:1") || strings.Contains(w.Body.String(), "dial") {
				t.Errorf("body %s leaks the store's error", w.Body)
			}
			if _, got := obs.counts(); !maps.Equal(got, tt.wantStoreErrors) {
				t.Errorf("store errors %v, want %v", got, tt.wantStoreErrors)
			}
		})
	}
	// The "disable, redis down" case left the user disabled: repeating the request once Redis
	// is back finishes the job (the answer told the operator so).
	if got, err := liveUsers.Get(ctx, u.ID); err != nil || !got.Disabled {
		t.Errorf("user %+v err %v, want disabled", got, err)
	}
}
