package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// errorBody is the JSON of every error answer: a machine-readable code and a fixed message.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// apiError is an error with the answer the client gets. msg is text written here (never a
// store's detail); err is the detail, logged only.
type apiError struct {
	status int
	code   string
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}

func (e *apiError) Unwrap() error { return e.err }

// fail builds an apiError.
func fail(status int, code, msg string, err error) error {
	return &apiError{status: status, code: code, msg: msg, err: err}
}

// handlerFunc is an API handler that returns its error to one adapter instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: an error is logged once with its detail and answered as JSON
// with its fixed message.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// classify turns any error into an apiError: the stores' sentinels map to 404 and 503,
// everything else is a 500.
func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, session.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
			msg: "The session store (Redis) is unavailable; try again shortly.", err: err}
	case errors.Is(err, users.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
			msg: "The user database is unavailable; try again shortly.", err: err}
	case errors.Is(err, session.ErrNotFound), errors.Is(err, users.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "not_found", msg: "Not found.", err: err}
	default:
		return &apiError{status: http.StatusInternalServerError, code: "internal_error",
			msg: "Something went wrong on our side.", err: err}
	}
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if errors.Is(err, session.ErrUnavailable) {
		s.obs.ObserveStoreError("sessions")
	}
	if errors.Is(err, users.ErrUnavailable) {
		s.obs.ObserveStoreError("users")
	}
	level := slog.LevelInfo
	if ae.status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "ops: request failed", "method", r.Method, "path", r.URL.Path,
		"status", ae.status, "code", ae.code, "err", ae.err)
	writeJSON(w, ae.status, errorBody{Error: ae.code, Message: ae.msg})
}

// writeJSON writes v as the JSON body of the answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads one JSON object of at most MaxBodyBytes into v, strictly: the body must be
// application/json, unknown fields and trailing data are refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"The body must be JSON (Content-Type: application/json).", err)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, "bad_request", "The body must hold exactly one JSON object.", err)
	}
	return nil
}

// decodeError turns a json decoding error into a 400 (or 413) that names the offending field
// when there is one.
func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "The body is larger than 64 KiB.", err)
	case errors.Is(err, io.EOF):
		return fail(http.StatusBadRequest, "bad_request", "The body is empty; send a JSON object.", err)
	case errors.As(err, &typeErr):
		return fail(http.StatusBadRequest, "bad_request",
			fmt.Sprintf("Field %s has the wrong type.", quoteField(typeErr.Field)), err)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, uerr := strconv.Unquote(name); uerr == nil {
			name = f
		}
		return fail(http.StatusBadRequest, "unknown_field", fmt.Sprintf("Unknown field %s.", quoteField(name)), err)
	}
	return fail(http.StatusBadRequest, "bad_request", "The body is not valid JSON.", err)
}

// quoteField quotes a field name for a message, cut to 64 bytes so a client cannot make the
// answer large.
func quoteField(name string) string {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return strconv.Quote(name)
}
