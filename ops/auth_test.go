package ops

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAPIRequiresToken(t *testing.T) {
	e := newTestEnv(t, nil)
	u := e.seedUser(t, "henry")
	s := e.seedSession(t, u)
	const wrong = "wrong-token-value-SHOULD-NOT-BE-LOGGED"
	tests := []struct {
		name          string
		auth          string // Authorization header; "" sends none
		method, path  string
		wantStatus    int
		wantChallenge string
	}{
		{name: "no token", method: "GET", path: "/api/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops"`},
		{name: "wrong token", auth: "Bearer " + wrong, method: "GET", path: "/api/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops", error="invalid_token"`},
		{name: "token prefix", auth: "Bearer " + testToken[:len(testToken)-1], method: "GET", path: "/api/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops", error="invalid_token"`},
		{name: "basic scheme", auth: "Basic " + testToken, method: "GET", path: "/api/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops", error="invalid_token"`},
		{name: "empty bearer", auth: "Bearer ", method: "GET", path: "/api/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops", error="invalid_token"`},
		{name: "no token, revoke", method: "DELETE", path: "/api/sessions/" + s.rec.Handle, wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops"`},
		{name: "no token, revoke all", method: "DELETE", path: "/api/users/" + u.ID + "/sessions", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops"`},
		{name: "no token, unknown API path", method: "GET", path: "/api/nope", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops"`},
		{name: "session cookie is no credential", auth: "", method: "GET", path: "/api/users", wantStatus: 401, wantChallenge: `Bearer realm="authgate-ops"`},
		{name: "right token", auth: "Bearer " + testToken, method: "GET", path: "/api/sessions", wantStatus: 200},
		{name: "scheme is case-insensitive", auth: "bearer " + testToken, method: "GET", path: "/api/users", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			req.AddCookie(&http.Cookie{Name: s.cookie.Name, Value: s.cookie.Value})
			req.Header.Set("X-Auth-Roles", "super_admin")
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantChallenge)
			}
			if tt.wantStatus != http.StatusUnauthorized {
				return
			}
			var body errorBody
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error != "unauthorized" {
				t.Errorf("body %+v err %v, want error unauthorized", body, err)
			}
		})
	}
	if !e.live(t, s) {
		t.Error("an unauthenticated DELETE revoked the session")
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "ops: unauthorized API request"); n != 9 {
		t.Errorf("%d warn lines for refused requests, want 9; logs:\n%s", n, logs)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "remote=127.0.0.1:") {
		t.Errorf("refused requests not logged at warn with the remote address:\n%s", logs)
	}
	for _, secret := range []string{wrong, testToken, testToken[:len(testToken)-1], s.cookie.Value} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a presented credential %q", secret)
		}
	}
}
