package ops

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// requireToken lets a request through only with `Authorization: Bearer <Options.Token>`.
// Anything else gets 401 with WWW-Authenticate and a warn log line naming the remote address,
// never the presented value. The ops API reads no cookie, so a browser cannot be made to call
// it cross-site, and it sends no CORS headers.
func (s *server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		presented, ok := bearer(header)
		if ok && s.tokenOK(presented) {
			next.ServeHTTP(w, r)
			return
		}
		reason, challenge := "missing", `Bearer realm="authgate-ops"`
		if header != "" {
			reason, challenge = "invalid", `Bearer realm="authgate-ops", error="invalid_token"`
		}
		s.log.Warn("ops: unauthorized API request", "remote", r.RemoteAddr, "method", r.Method,
			"path", r.URL.Path, "token", reason)
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized",
			Message: "A valid bearer token is required (Authorization: Bearer <admin.token>)."})
	})
}

// bearer extracts the credentials of a Bearer Authorization header (scheme case-insensitive).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// tokenOK compares the presented token with the configured one in constant time (hashing
// first, so neither the content nor the length leaks through timing).
func (s *server) tokenOK(presented string) bool {
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}
