package gateway

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

// httpError is an error with the answer the client gets. msg is fixed text written by the
// gateway (never input or upstream detail); err is the detail, logged only.
type httpError struct {
	status int
	code   string // machine-readable, e.g. "unauthenticated"
	msg    string // human-readable, shown on the page
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}

func (e *httpError) Unwrap() error { return e.err }

// fail builds an httpError.
func fail(status int, code, msg string, err error) error {
	return &httpError{status: status, code: code, msg: msg, err: err}
}

// handlerFunc is a handler that returns its error to one adapter instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: an error is logged once, with its detail, and answered with its
// fixed message, as JSON for API clients and as a small HTML page for browsers.
func (g *Gateway) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			g.writeError(w, r, err)
		}
	})
}

func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{status: http.StatusInternalServerError, code: "internal_error", msg: "Something went wrong on our side.", err: err}
	}
	level := slog.LevelInfo
	if he.status >= 500 && he.code != "client_gone" {
		level = slog.LevelError
	}
	g.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path,
		"status", he.status, "code", he.code, "err", he.err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	closeIfBodyUnread(w, r)
	if wantsHTML(r) {
		p := page{Title: http.StatusText(he.status), Message: he.msg, Code: he.code}
		p.Link, p.LinkText = nextStep(he)
		writePage(w, he.status, p)
		return
	}
	writeJSON(w, he.status, map[string]string{"error": he.code, "message": he.msg})
}

// nextStep is the link an error page offers: what the person can do next.
func nextStep(he *httpError) (link, text string) {
	switch {
	case he.status == http.StatusForbidden && he.code == "forbidden":
		return authPrefix + "logout", "Log in as someone else"
	case he.status == http.StatusBadRequest || he.status == http.StatusUnauthorized ||
		he.code == "idp_refused" || he.code == "account_disabled":
		return authPrefix + "login", "Start the login again"
	case he.status >= 500:
		return "/", "Try again"
	}
	return "/", "Go to the home page"
}

// closeIfBodyUnread marks a refusal of a request whose body was not read with "Connection:
// close". Otherwise net/http would first drain (up to 256 KiB of) the body before answering,
// and a client that sends its body slowly, without a session, would hold the connection and
// never get its 401.
func closeIfBodyUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wantsHTML reports whether the request is a browser navigation (a page, not an API call).
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

// page is the data of the gateway's own HTML pages.
type page struct {
	Title, Message, Code string
	Action, Button       string // optional form that POSTs to Action
	Link, LinkText       string // optional link
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} · authgate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2433;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border-radius:10px;box-shadow:0 2px 12px #0002;padding:2rem 2.5rem;max-width:32rem}
h1{font-size:1.3rem;margin:0 0 .5rem}code{color:#6b7280}button,a.btn{font:inherit;background:#2f5bea;color:#fff;border:0;border-radius:6px;padding:.5rem 1.2rem;cursor:pointer;text-decoration:none;display:inline-block}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Action}}<form method="post" action="{{.Action}}"><button id="submit" type="submit">{{.Button}}</button></form>{{end}}
{{if .Link}}<p><a class="btn" href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
{{if .Code}}<p><code>{{.Code}}</code></p>{{end}}</main></body></html>
`))

// writePage renders one of the gateway's own pages. All fields are escaped by html/template.
func writePage(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}
