package devidp

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// pageTemplate renders the login and signed-out pages. Self-contained: no external assets.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 2px 12px rgba(0,0,0,.1);width:20rem}
h1{font-size:1.25rem;margin:0 0 .25rem}
.warn{color:#8a5300;font-size:.8rem;margin:0 0 1.25rem}
label{display:block;font-size:.9rem;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #bbb;border-radius:4px}
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2457c5;color:#fff;font-size:1rem;cursor:pointer}
.error{color:#b00020;font-size:.9rem;margin:.75rem 0 0}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p class="warn">Development identity provider. Not for production.</p>
{{if .Form}}
<form method="post" action="{{.Action}}" autocomplete="off">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
<button id="submit" type="submit">Sign in</button>
</form>
{{else}}
<p id="message">{{.Message}}</p>
{{end}}
</main>
</body>
</html>
`

type pageData struct {
	Title, Message                         string
	Form                                   bool
	Action, AuthRequestID, Username, Error string
}

func newPageTemplate() *template.Template {
	return template.Must(template.New("page").Parse(pageTemplate))
}

func (p *Provider) render(w http.ResponseWriter, status int, data pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := p.page.Execute(w, data); err != nil {
		p.logger.Error("devidp: render page", "err", err)
	}
}

// loginForm shows the username+password form for an auth request.
func (p *Provider) loginForm(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, err := p.store.AuthRequestByID(r.Context(), id); err != nil {
		p.render(w, http.StatusBadRequest, pageData{Title: "Sign-in failed", Message: "Unknown or expired login request. Start the login again."})
		return
	}
	p.render(w, http.StatusOK, pageData{Title: "Sign in", Form: true, Action: p.basePath + loginPath, AuthRequestID: id})
}

// loginSubmit checks the credentials and sends the browser back to the op callback.
func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("authRequestID")
	username := r.PostForm.Get("username")
	user, err := p.store.checkLogin(username, r.PostForm.Get("password"), id)
	switch {
	case errors.Is(err, errBadCredentials):
		p.logger.Info("devidp: login failed", "username", username)
		p.render(w, http.StatusUnauthorized, pageData{
			Title: "Sign in", Form: true, Action: p.basePath + loginPath, AuthRequestID: id,
			Username: username, Error: "Invalid username or password.",
		})
		return
	case err != nil:
		p.render(w, http.StatusBadRequest, pageData{Title: "Sign-in failed", Message: "Unknown or expired login request. Start the login again."})
		return
	}
	p.logger.Info("devidp: login succeeded", "username", user.Username, "sub", user.ID)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), id), http.StatusSeeOther)
}

// loggedOut is where end_session lands without a post_logout_redirect_uri.
func (p *Provider) loggedOut(w http.ResponseWriter, _ *http.Request) {
	p.render(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out of the development identity provider."})
}
