package ops

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/users"
)

// userJSON is how the API shows a user.
type userJSON struct {
	ID            string    `json:"id"`
	Issuer        string    `json:"issuer"`
	Subject       string    `json:"subject"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	Roles         []string  `json:"roles"`
	Groups        []string  `json:"groups"`
	GrantedRoles  []string  `json:"granted_roles"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	LastLoginAt   time.Time `json:"last_login_at"`
}

func toUserJSON(u users.User) userJSON {
	return userJSON{
		ID: u.ID, Issuer: u.Issuer, Subject: u.Subject, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Roles: nonNil(u.Roles), Groups: nonNil(u.Groups), GrantedRoles: nonNil(u.GrantedRoles),
		Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, LastLoginAt: u.LastLoginAt,
	}
}

// userList is the answer of GET /api/users.
type userList struct {
	Users []userJSON `json:"users"`
}

// listUsers: GET /api/users?email=&limit= (without email: the most recent logins).
func (s *server) listUsers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	var us []users.User
	if email := q.Get("email"); email != "" {
		if !validEmail(email) {
			return fail(http.StatusBadRequest, "bad_request", "email is not a valid email address.", nil)
		}
		us, err = s.users.FindByEmail(r.Context(), email, limit)
	} else {
		us, err = s.users.List(r.Context(), limit)
	}
	if err != nil {
		return err
	}
	out := userList{Users: make([]userJSON, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getUser: GET /api/users/{user_id}.
func (s *server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.lookupUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

func (s *server) lookupUser(r *http.Request) (users.User, error) {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		return users.User{}, errUserNotFound(nil)
	}
	u, err := s.users.Get(r.Context(), id)
	if errors.Is(err, users.ErrNotFound) {
		return users.User{}, errUserNotFound(err)
	}
	return u, err
}

// patchBody is the body of PATCH /api/users/{user_id}.
type patchBody struct {
	Disabled *bool `json:"disabled"`
}

// patchResult is the answer of PATCH /api/users/{user_id}: the user, and how many live
// sessions disabling ended.
type patchResult struct {
	User    userJSON `json:"user"`
	Revoked int      `json:"revoked"`
}

// patchUser: PATCH /api/users/{user_id} with {"disabled": true|false}. Disabling ends every
// live session of the user at once, since the per-request path never reads the database.
func (s *server) patchUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		return errUserNotFound(nil)
	}
	var body patchBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Disabled == nil {
		return fail(http.StatusBadRequest, "bad_request", `Field "disabled" (true or false) is required.`, nil)
	}
	u, err := s.users.SetDisabled(r.Context(), id, *body.Disabled)
	if errors.Is(err, users.ErrNotFound) {
		return errUserNotFound(err)
	}
	if err != nil {
		return err
	}
	res := patchResult{User: toUserJSON(u)}
	if u.Disabled {
		res.Revoked, err = s.sessions.RevokeSubject(r.Context(), u.Issuer, u.Subject)
		if err != nil {
			return fail(http.StatusServiceUnavailable, "revocation_failed",
				"The user is disabled, but their sessions could not be ended; repeat the request.", err)
		}
		s.obs.ObserveRevocation("user_disabled", res.Revoked)
		s.audit(r, users.Event{Kind: users.KindRevocation, UserID: id, Reason: "user disabled (ops API)"})
	}
	s.log.Info("ops: user updated", "user_id", id, "disabled", u.Disabled, "revoked", res.Revoked,
		"remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, res)
	return nil
}

func errUserNotFound(err error) error {
	return fail(http.StatusNotFound, "user_not_found", "No user has this id.", err)
}
