package ops

import (
	"context"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/users"
)

func TestListAndGetSessions(t *testing.T) {
	e := newTestEnv(t, nil)
	alice, bob := e.seedUser(t, "alice"), e.seedUser(t, "bob")
	a1, a2, b1 := e.seedSession(t, alice), e.seedSession(t, alice), e.seedSession(t, bob)

	tests := []struct {
		name       string
		path       string
		wantStatus int
		want       []string // handles, newest first; nil: do not check
		wantCount  int      // with want nil: how many sessions (List samples with a bounded SCAN)
	}{
		{name: "all", path: "/api/sessions", wantStatus: 200, want: []string{b1.rec.Handle, a2.rec.Handle, a1.rec.Handle}},
		{name: "limit", path: "/api/sessions?limit=2", wantStatus: 200, wantCount: 2},
		{name: "limit with filter", path: "/api/sessions?limit=1&user_id=" + alice.ID, wantStatus: 200, want: []string{a2.rec.Handle}},
		{name: "by user id", path: "/api/sessions?user_id=" + alice.ID, wantStatus: 200, want: []string{a2.rec.Handle, a1.rec.Handle}},
		{name: "by email", path: "/api/sessions?email=bob@example.com", wantStatus: 200, want: []string{b1.rec.Handle}},
		{name: "by email, other case", path: "/api/sessions?email=ALICE@Example.com", wantStatus: 200, want: []string{a2.rec.Handle, a1.rec.Handle}},
		{name: "unknown email", path: "/api/sessions?email=nobody@example.com", wantStatus: 200, want: []string{}},
		{name: "unknown user", path: "/api/sessions?user_id=00000000-0000-0000-0000-000000000000", wantStatus: 200, want: []string{}},
		{name: "both filters", path: "/api/sessions?email=bob@example.com&user_id=" + bob.ID, wantStatus: 400},
		{name: "pattern in user id", path: "/api/sessions?user_id=%2A", wantStatus: 400},
		{name: "bad limit", path: "/api/sessions?limit=abc", wantStatus: 400},
		{name: "negative limit", path: "/api/sessions?limit=-1", wantStatus: 400},
		{name: "huge limit is capped", path: "/api/sessions?limit=100000000", wantStatus: 200, want: []string{b1.rec.Handle, a2.rec.Handle, a1.rec.Handle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.call(t, http.MethodGet, tt.path, testToken, "")
			if res.status != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", res.status, tt.wantStatus, res.body)
			}
			if tt.want == nil {
				if got := res.handles(t); res.status == 200 && len(got) != tt.wantCount {
					t.Errorf("%d sessions %v, want %d", len(got), got, tt.wantCount)
				}
				return
			}
			if got := res.handles(t); !slices.Equal(got, tt.want) {
				t.Errorf("handles %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("get one", func(t *testing.T) {
		res := e.call(t, http.MethodGet, "/api/sessions/"+a1.rec.Handle, testToken, "")
		if res.status != http.StatusOK {
			t.Fatalf("status %d, want 200 (body %s)", res.status, res.body)
		}
		var got sessionJSON
		res.decode(t, &got)
		want := toSessionJSON(a1.rec)
		if got.Handle != want.Handle || got.UserID != alice.ID || got.Email != "alice@example.com" ||
			!slices.Equal(got.Roles, []string{"viewer"}) || got.IP != "192.0.2.7" || got.UserAgent != browserUA ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.LastSeenAt.IsZero() {
			t.Errorf("session %+v, want %+v", got, want)
		}
		for _, field := range []string{`"handle"`, `"user_id"`, `"email"`, `"roles"`, `"created_at"`,
			`"last_seen_at"`, `"expires_at"`, `"ip"`, `"user_agent"`} {
			if !strings.Contains(string(res.body), field) {
				t.Errorf("body %s lacks field %s", res.body, field)
			}
		}
	})

	for _, tt := range []struct{ name, handle string }{
		{name: "unknown handle", handle: "AAAAAAAAAAAAAAAAAAAAAA"},
		{name: "malformed handle", handle: "not*a*handle"},
	} {
		t.Run("get "+tt.name, func(t *testing.T) {
			res := e.call(t, http.MethodGet, "/api/sessions/"+tt.handle, testToken, "")
			if res.status != http.StatusNotFound || !strings.Contains(string(res.body), `"error":"session_not_found"`) {
				t.Errorf("status %d body %s, want 404 session_not_found", res.status, res.body)
			}
		})
	}
}

func TestRevokeSessions(t *testing.T) {
	obs := newCountingObserver()
	e := newTestEnv(t, func(o *Options) { o.Observer = obs })
	alice, bob := e.seedUser(t, "alice"), e.seedUser(t, "bob")
	a1, a2, a3, b1 := e.seedSession(t, alice), e.seedSession(t, alice), e.seedSession(t, alice), e.seedSession(t, bob)

	res := e.call(t, http.MethodDelete, "/api/sessions/"+a1.rec.Handle, testToken, "")
	if res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("revoke: status %d body %q, want 204 and no body", res.status, res.body)
	}
	if e.live(t, a1) {
		t.Error("revoked session still accepted by the store")
	}
	if !e.live(t, a2) || !e.live(t, b1) {
		t.Error("revoking one session ended others")
	}
	ev := e.users.Events()
	if len(ev) != 1 || ev[0].Kind != users.KindRevocation || ev[0].SessionHandle != a1.rec.Handle || ev[0].UserID != alice.ID {
		t.Errorf("audit events %+v, want one revocation of %s for %s", ev, a1.rec.Handle, alice.ID)
	}

	res = e.call(t, http.MethodDelete, "/api/sessions/"+a1.rec.Handle, testToken, "")
	if res.status != http.StatusNotFound {
		t.Errorf("second revoke: status %d, want 404", res.status)
	}
	res = e.call(t, http.MethodDelete, "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", testToken, "")
	if res.status != http.StatusNotFound {
		t.Errorf("revoke unknown: status %d, want 404", res.status)
	}

	res = e.call(t, http.MethodDelete, "/api/users/"+alice.ID+"/sessions", testToken, "")
	var n struct{ Revoked int }
	res.decode(t, &n)
	if res.status != http.StatusOK || n.Revoked != 2 {
		t.Fatalf("revoke all: status %d body %s, want 200 revoked 2", res.status, res.body)
	}
	if e.live(t, a2) || e.live(t, a3) {
		t.Error("a session of alice survived revoke-all")
	}
	if !e.live(t, b1) {
		t.Error("revoke-all of alice ended bob's session")
	}
	if got := e.call(t, http.MethodGet, "/api/sessions?user_id="+alice.ID, testToken, "").handles(t); len(got) != 0 {
		t.Errorf("alice still lists sessions %v", got)
	}
	res = e.call(t, http.MethodDelete, "/api/users/"+alice.ID+"/sessions", testToken, "")
	res.decode(t, &n)
	if res.status != http.StatusOK || n.Revoked != 0 {
		t.Errorf("repeat revoke all: status %d body %s, want 200 revoked 0", res.status, res.body)
	}
	res = e.call(t, http.MethodDelete, "/api/users/00000000-0000-0000-0000-000000000000/sessions", testToken, "")
	if res.status != http.StatusNotFound || !strings.Contains(string(res.body), "user_not_found") {
		t.Errorf("revoke all of an unknown user: status %d body %s, want 404 user_not_found", res.status, res.body)
	}
	want := map[string]int{"ops_revoke": 1, "ops_revoke_user": 2}
	if got, _ := obs.counts(); !maps.Equal(got, want) {
		t.Errorf("observed revocations %v, want %v", got, want)
	}
}

func TestDisableEnableUser(t *testing.T) {
	obs := newCountingObserver()
	e := newTestEnv(t, func(o *Options) { o.Observer = obs })
	carol, dave := e.seedUser(t, "carol"), e.seedUser(t, "dave")
	c1, c2, d1 := e.seedSession(t, carol), e.seedSession(t, carol), e.seedSession(t, dave)
	ctx := context.Background()

	res := e.call(t, http.MethodPatch, "/api/users/"+carol.ID, testToken, `{"disabled":true}`)
	var got patchResult
	res.decode(t, &got)
	if res.status != http.StatusOK || !got.User.Disabled || got.Revoked != 2 || got.User.ID != carol.ID {
		t.Fatalf("disable: status %d body %s, want 200, disabled, revoked 2", res.status, res.body)
	}
	if e.live(t, c1) || e.live(t, c2) {
		t.Error("a session of the disabled user still works")
	}
	if !e.live(t, d1) {
		t.Error("disabling carol ended dave's session")
	}
	if u, err := e.users.Get(ctx, carol.ID); err != nil || !u.Disabled {
		t.Errorf("store: user %+v err %v, want disabled", u, err)
	}
	var shown userJSON
	e.call(t, http.MethodGet, "/api/users/"+carol.ID, testToken, "").decode(t, &shown)
	if !shown.Disabled || shown.Email != "carol@example.com" {
		t.Errorf("GET user %+v, want carol disabled", shown)
	}

	res = e.call(t, http.MethodPatch, "/api/users/"+carol.ID, testToken, `{"disabled":false}`)
	got = patchResult{}
	res.decode(t, &got)
	if res.status != http.StatusOK || got.User.Disabled || got.Revoked != 0 {
		t.Fatalf("enable: status %d body %s, want 200, enabled", res.status, res.body)
	}
	if u, err := e.users.Get(ctx, carol.ID); err != nil || u.Disabled {
		t.Errorf("store: user %+v err %v, want enabled", u, err)
	}
	if got, _ := obs.counts(); !maps.Equal(got, map[string]int{"user_disabled": 2}) {
		t.Errorf("observed revocations %v, want user_disabled 2", got)
	}
	ev := e.users.Events()
	if len(ev) != 1 || ev[0].Kind != users.KindRevocation || ev[0].UserID != carol.ID || ev[0].Route != "ops" || ev[0].IP != "127.0.0.1" {
		t.Errorf("audit events %+v, want one revocation for carol from 127.0.0.1", ev)
	}
}

func TestUsersAPI(t *testing.T) {
	e := newTestEnv(t, nil)
	erin, frank := e.seedUser(t, "erin"), e.seedUser(t, "frank")
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantIDs    []string // for lists; nil: single user or error
		wantID     string
	}{
		{name: "list", path: "/api/users", wantStatus: 200, wantIDs: []string{erin.ID, frank.ID}},
		{name: "by email", path: "/api/users?email=Frank@example.com", wantStatus: 200, wantIDs: []string{frank.ID}},
		{name: "unknown email", path: "/api/users?email=x@example.com", wantStatus: 200, wantIDs: []string{}},
		{name: "bad email", path: "/api/users?email=no%20at", wantStatus: 400},
		{name: "get", path: "/api/users/" + erin.ID, wantStatus: 200, wantID: erin.ID},
		{name: "get unknown", path: "/api/users/00000000-0000-0000-0000-000000000000", wantStatus: 404},
		{name: "get not a uuid", path: "/api/users/nope", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.call(t, http.MethodGet, tt.path, testToken, "")
			if res.status != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", res.status, tt.wantStatus, res.body)
			}
			switch {
			case tt.wantIDs != nil:
				var l userList
				res.decode(t, &l)
				var ids []string
				for _, u := range l.Users {
					ids = append(ids, u.ID)
				}
				slices.Sort(ids)
				want := slices.Sorted(slices.Values(tt.wantIDs))
				if !slices.Equal(ids, want) {
					t.Errorf("ids %v, want %v", ids, want)
				}
			case tt.wantID != "":
				var u userJSON
				res.decode(t, &u)
				if u.ID != tt.wantID {
					t.Errorf("id %s, want %s", u.ID, tt.wantID)
				}
			}
		})
	}
}

func TestPatchUserValidation(t *testing.T) {
	e := newTestEnv(t, nil)
	gina := e.seedUser(t, "gina")
	s := e.seedSession(t, gina)
	path := "/api/users/" + gina.ID
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantInBody  string
	}{
		{name: "unknown field", body: `{"disabled":true,"admin":true}`, wantStatus: 400, wantInBody: `admin`},
		{name: "missing field", body: `{}`, wantStatus: 400, wantInBody: `disabled`},
		{name: "wrong type", body: `{"disabled":"yes"}`, wantStatus: 400, wantInBody: `disabled`},
		{name: "not json", body: `disabled=true`, wantStatus: 400, wantInBody: `bad_request`},
		{name: "empty body", body: ``, wantStatus: 400, wantInBody: `bad_request`},
		{name: "trailing data", body: `{"disabled":true}{"disabled":false}`, wantStatus: 400, wantInBody: `bad_request`},
		{name: "wrong content type", contentType: "text/plain", body: `{"disabled":true}`, wantStatus: 415},
		{name: "too large", body: `{"disabled":true,"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, wantStatus: 413},
		{name: "unknown user", path: "/api/users/00000000-0000-0000-0000-000000000000", body: `{"disabled":true}`, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := path
			if tt.path != "" {
				p = tt.path
			}
			req, err := http.NewRequest(http.MethodPatch, e.srv.URL+p, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			ct := "application/json"
			if tt.contentType != "" {
				ct = tt.contentType
			}
			req.Header.Set("Content-Type", ct)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantInBody) {
				t.Errorf("status %d body %s, want %d containing %q", res.StatusCode, b, tt.wantStatus, tt.wantInBody)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
	if u, err := e.users.Get(context.Background(), gina.ID); err != nil || u.Disabled {
		t.Errorf("after refused PATCHes: user %+v err %v, want still enabled", u, err)
	}
	if !e.live(t, s) {
		t.Error("a refused PATCH ended the user's session")
	}
}
