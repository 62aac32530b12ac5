package users

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) when the requested user does not exist, including when the
// id is not a well-formed uuid. Callers test it with errors.Is.
var ErrNotFound = errors.New("users: not found")

// ErrUnavailable is returned (wrapped, together with the driver's error) when the database
// cannot be reached or did not answer within Options.Timeout: connection refused or reset,
// DNS failure, timeout, server shutting down, SQLite busy. The gateway answers 503 for it.
// Constraint violations and bad data are never ErrUnavailable.
var ErrUnavailable = errors.New("users: database unavailable")

// unavailableError wraps a driver error so that errors.Is matches both ErrUnavailable and the
// original error, with one readable message.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// wrapErr turns a driver error into the package's error vocabulary, prefixed with the
// operation: sql.ErrNoRows becomes ErrNotFound, connectivity problems become ErrUnavailable.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("users: %s: %w", op, ErrNotFound)
	case isUnavailable(err):
		return fmt.Errorf("users: %s: %w", op, unavailableError{err})
	default:
		return fmt.Errorf("users: %s: %w", op, err)
	}
}

// isUnavailable reports whether err means "the database could not be reached or did not answer
// in time" as opposed to "the database refused this statement".
func isUnavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailablePgCode(pgErr.Code)
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		return unavailableSQLiteCode(sqlErr.Code())
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	for _, target := range []error{
		context.DeadlineExceeded, driver.ErrBadConn, sql.ErrConnDone, io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// unavailablePgCode: class 08 (connection exception), 53 (insufficient resources), 57P01-57P03
// (admin/crash shutdown, cannot connect now), 57014 (query canceled by statement timeout).
func unavailablePgCode(code string) bool {
	if len(code) == 5 && (code[:2] == "08" || code[:2] == "53") {
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", "57014":
		return true
	}
	return false
}

// unavailableSQLiteCode: the database file is locked by someone else past busy_timeout, cannot
// be opened, or the disk failed. Constraint and type errors are not in this list.
func unavailableSQLiteCode(code int) bool {
	switch code & 0xff { // primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_INTERRUPT:
		return true
	}
	return false
}
