package models

import (
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
)

// UnavailableError is a failure of something the server depends on (the database, Redis,
// object storage, a full disk) rather than of the request: the same request may succeed
// later. The API and the registry answer it 503 in their own error formats, with a
// Retry-After; the cause goes to the log only.
type UnavailableError struct {
	// Service names what failed ("database", "redis", "storage").
	Service string
	Err     error
}

func (e *UnavailableError) Error() string { return e.Service + " unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable wraps err, when it is not nil, as an UnavailableError of service.
func Unavailable(service string, err error) error {
	if err == nil {
		return nil
	}
	return &UnavailableError{Service: service, Err: err}
}

// unavailabler is implemented by errors of other packages (storage drivers, clients) that
// know they mean a dependency is down or full.
type unavailabler interface{ Unavailable() bool }

// IsUnavailable reports whether err means that a dependency failed, not the request: an
// UnavailableError, an error that says so through an Unavailable() bool method, a full disk
// or quota (ENOSPC, EDQUOT), a read-only file system, a PostgreSQL connection failure or
// shutdown (SQLSTATE classes 08, 53 and 57P), an SQLite database on a full disk or failing
// to read or write its file (SQLITE_FULL, SQLITE_IOERR), or a bad database connection. A bare
// network error is not one: it may be the client's (a reset mid-upload); the database, Redis
// and storage boundaries wrap their own network failures.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return true
	}
	var u unavailabler
	if errors.As(err, &u) && u.Unavailable() {
		return true
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) {
		return true
	}
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "57P")
	}
	var se *gosqlite.Error
	if errors.As(err, &se) {
		return sqliteUnavailable(se.Code())
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// SQLite's primary result codes of a database that cannot write for the disk's sake
// (https://sqlite.org/rescode.html); extended codes carry them in their low byte.
const (
	sqliteIOErr = 10 // SQLITE_IOERR
	sqliteFull  = 13 // SQLITE_FULL
)

// sqliteUnavailable reports whether an SQLite result code means the disk under the database
// failed (full, or an I/O error) rather than the statement.
func sqliteUnavailable(code int) bool {
	switch code & 0xff {
	case sqliteIOErr, sqliteFull:
		return true
	}
	return false
}

// netFailure reports whether err is a failed network operation or an I/O deadline: at the
// boundary of a dependency (the database, Redis), where only its connections are used, that
// is the dependency's failure; elsewhere it may be a client's.
func netFailure(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, os.ErrDeadlineExceeded)
}
