package models

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

type downErr struct{ down bool }

func (e downErr) Error() string     { return "down" }
func (e downErr) Unavailable() bool { return e.down }

func TestIsUnavailable(t *testing.T) {
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"not found", &NotFoundError{Model: "X"}, false},
		{"validation", NewValidationError("name", "bad"), false},
		{"cancelled", context.Canceled, false},
		{"wrapped", Unavailable("redis", errors.New("x")), true},
		{"wrapped twice", fmt.Errorf("sync: %w", Unavailable("database", errors.New("x"))), true},
		{"method true", fmt.Errorf("put: %w", downErr{true}), true},
		{"method false", downErr{false}, false},
		{"disk full", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, true},
		{"quota", &os.SyscallError{Syscall: "write", Err: syscall.EDQUOT}, true},
		{"not exist", &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, false},
		{"pg shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg connection", &pgconn.PgError{Code: "08006"}, true},
		{"pg disk full", &pgconn.PgError{Code: "53100"}, true},
		{"pg unique", &pgconn.PgError{Code: "23505"}, false},
		{"bare network error (may be the client's)", dialErr, false},
		{"network error wrapped at a boundary", Unavailable("redis", dialErr), dialErr != nil},
	} {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
