package ops

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestNoSecretInAnyAnswer seeds sessions with known token strings and calls every endpoint
// of the listener: no answer (body or header) and no log line may hold a token, a session
// id, a cookie value or the ops token.
func TestNoSecretInAnyAnswer(t *testing.T) {
	e := newTestEnv(t, nil)
	ivy, jack := e.seedUser(t, "ivy"), e.seedUser(t, "jack")
	i1, i2, j1 := e.seedSession(t, ivy), e.seedSession(t, ivy), e.seedSession(t, jack)

	var secrets []string
	for _, s := range []seeded{i1, i2, j1} {
		secrets = append(secrets, s.rec.IDToken, s.rec.AccessToken, s.rec.RefreshToken, s.cookie.Value, s.id)
	}
	secrets = append(secrets, testToken)

	calls := []struct{ method, path, body string }{
		{method: "GET", path: "/"},
		{method: "GET", path: "/ui/app.js"},
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/readyz"},
		{method: "GET", path: "/api/sessions"},
		{method: "GET", path: "/api/sessions?limit=1000"},
		{method: "GET", path: "/api/sessions?user_id=" + ivy.ID},
		{method: "GET", path: "/api/sessions?email=ivy@example.com"},
		{method: "GET", path: "/api/sessions/" + i1.rec.Handle},
		{method: "GET", path: "/api/sessions/" + j1.rec.Handle},
		{method: "GET", path: "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA"},
		{method: "GET", path: "/api/users"},
		{method: "GET", path: "/api/users?email=jack@example.com"},
		{method: "GET", path: "/api/users/" + ivy.ID},
		{method: "PATCH", path: "/api/users/" + jack.ID, body: `{"disabled":false}`},
		{method: "PATCH", path: "/api/users/" + jack.ID, body: `{"bogus":1}`},
		{method: "DELETE", path: "/api/sessions/" + i1.rec.Handle},
		{method: "DELETE", path: "/api/users/" + ivy.ID + "/sessions"},
		{method: "PATCH", path: "/api/users/" + jack.ID, body: `{"disabled":true}`},
	}
	for _, c := range calls {
		for _, token := range []string{testToken, ""} {
			res := e.call(t, c.method, c.path, token, c.body)
			if res.status >= 500 {
				t.Errorf("%s %s: status %d", c.method, c.path, res.status)
			}
			answer := string(res.body) + fmt.Sprint(res.header)
			for _, s := range secrets {
				if strings.Contains(answer, s) {
					t.Errorf("%s %s (token %v): answer contains secret %q", c.method, c.path, token != "", s)
				}
			}
		}
	}
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain secret %q", s)
		}
	}
	// The calls above did reach the data: the handles were shown and the revocations happened.
	if res := e.call(t, http.MethodGet, "/api/sessions?limit=1000", testToken, ""); len(res.handles(t)) != 0 {
		t.Errorf("sessions left %v, want none (revoke-all of ivy and disable of jack)", res.handles(t))
	}
}
