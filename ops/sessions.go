package ops

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// sessionJSON is the only shape in which the API shows a session. It is built field by field
// from a session.Record and deliberately has no field for a token, the session id or the
// cookie value: never marshal a Record itself.
type sessionJSON struct {
	Handle     string    `json:"handle"`
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	Groups     []string  `json:"groups"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
}

func toSessionJSON(r *session.Record) sessionJSON {
	return sessionJSON{
		Handle: r.Handle, UserID: r.UserID, Email: r.Email, Name: r.Name,
		Roles: nonNil(r.Roles), Groups: nonNil(r.Groups),
		CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt,
		IP: r.IP, UserAgent: r.UserAgent,
	}
}

// sessionList is the answer of GET /api/sessions.
type sessionList struct {
	Sessions []sessionJSON `json:"sessions"`
}

// listSessions: GET /api/sessions?user_id=&email=&limit= (one filter at most).
func (s *server) listSessions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	userID, email := q.Get("user_id"), q.Get("email")
	var recs []*session.Record
	switch {
	case userID != "" && email != "":
		return fail(http.StatusBadRequest, "bad_request", "Use either user_id or email, not both.", nil)
	case userID != "":
		if !validUserID(userID) {
			return fail(http.StatusBadRequest, "bad_request", "user_id is not a valid user id.", nil)
		}
		recs, err = s.userSessions(r, userID)
	case email != "":
		recs, err = s.sessionsByEmail(r, email, limit)
	default:
		recs, err = s.sessions.List(r.Context(), limit)
	}
	if err != nil {
		return err
	}
	slices.SortStableFunc(recs, func(a, b *session.Record) int { return b.CreatedAt.Compare(a.CreatedAt) })
	recs = recs[:min(len(recs), limit)]
	out := sessionList{Sessions: make([]sessionJSON, 0, len(recs))}
	for _, rec := range recs {
		out.Sessions = append(out.Sessions, toSessionJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// userSessions finds the user in the database, then the sessions of its IdP identity. An
// unknown user has none.
func (s *server) userSessions(r *http.Request, userID string) ([]*session.Record, error) {
	u, err := s.users.Get(r.Context(), userID)
	if errors.Is(err, users.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.sessions.ListSubject(r.Context(), u.Issuer, u.Subject)
}

// sessionsByEmail finds the users with this email in the database, then their sessions.
func (s *server) sessionsByEmail(r *http.Request, email string, limit int) ([]*session.Record, error) {
	if !validEmail(email) {
		return nil, fail(http.StatusBadRequest, "bad_request", "email is not a valid email address.", nil)
	}
	us, err := s.users.FindByEmail(r.Context(), email, limit)
	if err != nil {
		return nil, err
	}
	var recs []*session.Record
	for _, u := range us {
		more, err := s.sessions.ListSubject(r.Context(), u.Issuer, u.Subject)
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	return recs, nil
}

// getSession: GET /api/sessions/{handle}.
func (s *server) getSession(w http.ResponseWriter, r *http.Request) error {
	handle := r.PathValue("handle")
	if !validHandle(handle) {
		return errSessionNotFound(nil)
	}
	rec, err := s.sessions.Lookup(r.Context(), handle)
	if errors.Is(err, session.ErrNotFound) {
		return errSessionNotFound(err)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSessionJSON(rec))
	return nil
}

// revokeSession: DELETE /api/sessions/{handle}. 204, or 404 when there is no such session.
func (s *server) revokeSession(w http.ResponseWriter, r *http.Request) error {
	handle := r.PathValue("handle")
	if !validHandle(handle) {
		return errSessionNotFound(nil)
	}
	// Lookup only names the user for the audit trail; Revoke decides the answer.
	rec, err := s.sessions.Lookup(r.Context(), handle)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return err
	}
	if err := s.sessions.Revoke(r.Context(), handle); errors.Is(err, session.ErrNotFound) {
		return errSessionNotFound(err)
	} else if err != nil {
		return err
	}
	var userID string
	if rec != nil {
		userID = rec.UserID
	}
	s.audit(r, users.Event{Kind: users.KindRevocation, UserID: userID, SessionHandle: handle,
		Reason: "revoked by an operator (ops API)"})
	s.obs.ObserveRevocation("ops_revoke", 1)
	s.log.Info("ops: session revoked", "handle", handle, "user_id", userID, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeUserSessions: DELETE /api/users/{user_id}/sessions, answering {"revoked": N}; 404
// for an unknown user. The user's IdP identity comes from the database, so this needs it.
func (s *server) revokeUserSessions(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("user_id")
	if !validUserID(userID) {
		return fail(http.StatusBadRequest, "bad_request", "The user id is not valid.", nil)
	}
	u, err := s.users.Get(r.Context(), userID)
	if errors.Is(err, users.ErrNotFound) {
		return errUserNotFound(err)
	}
	if err != nil {
		return err
	}
	n, err := s.sessions.RevokeSubject(r.Context(), u.Issuer, u.Subject)
	if err != nil {
		return err
	}
	s.audit(r, users.Event{Kind: users.KindRevocation, UserID: userID,
		Reason: "all sessions revoked by an operator (ops API): " + strconv.Itoa(n)})
	s.obs.ObserveRevocation("ops_revoke_user", n)
	s.log.Info("ops: user sessions revoked", "user_id", userID, "revoked", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
	return nil
}

// audit queues an event of an operator action. IP is the operator's address (the actor).
func (s *server) audit(r *http.Request, e users.Event) {
	e.Time = s.now()
	e.IP = remoteIP(r)
	e.UserAgent = r.UserAgent()
	e.Route = "ops"
	s.users.Audit(e)
}

func errSessionNotFound(err error) error {
	return fail(http.StatusNotFound, "session_not_found", "No live session has this handle.", err)
}

// parseLimit reads the limit query parameter: empty means DefaultListLimit; values above
// MaxListLimit are capped; anything that is not a positive integer is a 400.
func parseLimit(v string) (int, error) {
	if v == "" {
		return DefaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fail(http.StatusBadRequest, "bad_request", "limit must be a positive integer.", err)
	}
	return min(n, MaxListLimit), nil
}

// validHandle accepts what a session handle can be (base64url, bounded), so no pattern or
// key syntax reaches the store.
func validHandle(h string) bool { return len(h) <= 64 && isToken(h, "-_") && h != "" }

// validUserID accepts user ids (uuids in the database; simple names in the memory store), and
// refuses characters that mean something in a Redis key or pattern (`{`, `}`, `*`, `?`, `[`).
func validUserID(id string) bool { return id != "" && len(id) <= 128 && isToken(id, "-_.@:") }

// validEmail accepts a plausible email address without control characters or spaces.
func validEmail(e string) bool {
	if len(e) > 320 || !strings.Contains(e, "@") {
		return false
	}
	for _, c := range e {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s holds only ASCII letters, digits and the extra characters.
func isToken(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// remoteIP is the host part of the peer address (the ops listener trusts no forwarding header).
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// nonNil turns nil into an empty list so the JSON shows [] instead of null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
