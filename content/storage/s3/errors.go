package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/content/storage"
)

// objectError maps a store error of op on p: *storage.PathNotFoundError when nothing is there,
// *storage.UnavailableError when the store failed rather than the request (see unavailable),
// and the error with op and p otherwise.
func objectError(p, op string, err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.StatusCode == http.StatusNotFound || resp.Code == minio.NoSuchKey) {
		return &storage.PathNotFoundError{Path: p}
	}
	return storeError(p, op, err)
}

// storeError wraps err, a failure of op on p, as *storage.UnavailableError when it means the
// store is down, overloaded, full or out of reach, so that clients get a 503 rather than a 500.
func storeError(p, op string, err error) error {
	if unavailable(err) {
		return &storage.UnavailableError{Op: op, Path: p, Err: err}
	}
	return fmt.Errorf("storage: %s %s: %w", op, p, err)
}

// unavailable reports whether err is the store's failure: a 5xx, 429 or 408 answer (a full
// disk behind the store answers 5xx), an S3 error code that says so, or no answer at all (a
// refused or broken connection, a timeout). The caller's own cancellation is not.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "SlowDown", "SlowDownWrite", "SlowDownRead", "ServiceUnavailable", "InternalError",
			"RequestTimeout", "XMinioStorageFull", "XMinioServerNotInitialized":
			return true
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return true
		}
		if resp.StatusCode != 0 {
			return false
		}
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
