package config

import (
	"errors"
	"fmt"
	"slices"
)

// FieldError is one problem of a configuration, about one key. Load, Parse and Validate return
// every problem they find, joined with errors.Join; use errors.As or Problems to get them.
// Msg never contains a secret value.
type FieldError struct {
	Key string // full key path, e.g. "session.same_site" or "routes[2].upstream"; "" for the whole file
	Msg string
}

// Error returns "<key>: <msg>".
func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// Problems returns every *FieldError inside err (as returned by Load, Parse or Validate), in
// order. An error that is not a FieldError (a file that cannot be read) is returned as a
// FieldError with an empty Key.
func Problems(err error) []*FieldError {
	if err == nil {
		return nil
	}
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
			return
		}
		out = append(out, &FieldError{Msg: e.Error()})
	}
	walk(err)
	return out
}

// problems collects FieldErrors.
type problems struct {
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) addAll(errs []error) { p.errs = append(p.errs, errs...) }

func (p *problems) err() error {
	return errors.Join(slices.Clip(p.errs)...)
}
