package gateway

import (
	"net/http"
	"time"
)

// meResponse is the body of GET /.auth/me.
type meResponse struct {
	UserID    string    `json:"user_id"`
	Subject   string    `json:"sub"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Groups    []string  `json:"groups"`
	ExpiresAt time.Time `json:"expires_at"`
}

// me tells a SPA who is logged in; 401 JSON without a live session. Never a token.
func (g *Gateway) me(w http.ResponseWriter, r *http.Request) error {
	g.setCORS(w, r)
	rec, err := g.loadSession(r)
	if err != nil {
		return err
	}
	if rec == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return nil
	}
	roles, groups := rec.Roles, rec.Groups
	if roles == nil {
		roles = []string{}
	}
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, meResponse{UserID: rec.UserID, Subject: rec.Subject, Email: rec.Email,
		Name: rec.Name, Roles: roles, Groups: groups, ExpiresAt: rec.ExpiresAt})
	return nil
}
