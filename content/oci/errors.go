package oci

import (
	"errors"
	"net/http"
	"time"
)

// Error is a registry error in the distribution spec's terms.
type Error struct {
	Status  int
	Code    string
	Message string
	Detail  map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is matches the same error with other details, so errors.Is(err, ErrBlobUnknown) works on
// copies made by WithDetail. Distinct errors that share a code (ErrUpstreamBad and
// ErrUnsupported, ErrReadOnly and ErrNameInvalid) do not match.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Status == e.Status && t.Message == e.Message
}

// WithDetail returns a copy of e carrying detail.
func (e *Error) WithDetail(key string, v any) *Error {
	c := *e
	c.Detail = map[string]any{key: v}
	return &c
}

// The registry errors pulpgo answers, with Pulp's messages.
var (
	ErrNameUnknown      = &Error{http.StatusNotFound, "NAME_UNKNOWN", "Repository not found.", nil}
	ErrNameInvalid      = &Error{http.StatusBadRequest, "NAME_INVALID", "Invalid repository name.", nil}
	ErrManifestUnknown  = &Error{http.StatusNotFound, "MANIFEST_UNKNOWN", "Manifest not found.", nil}
	ErrManifestInvalid  = &Error{http.StatusBadRequest, "MANIFEST_INVALID", "manifest invalid", nil}
	ErrBlobUnknown      = &Error{http.StatusNotFound, "BLOB_UNKNOWN", "Blob not found.", nil}
	ErrDigestInvalid    = &Error{http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content", nil}
	ErrUnauthorized     = &Error{http.StatusUnauthorized, "UNAUTHORIZED", "Authentication credentials were not provided.", nil}
	ErrDenied           = &Error{http.StatusForbidden, "DENIED", "You do not have permission to perform this action.", nil}
	ErrUnsupported      = &Error{http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.", nil}
	ErrReadOnly         = &Error{http.StatusBadRequest, "NAME_INVALID", "Repository is read-only.", nil}
	ErrUpstreamThrottle = &Error{http.StatusTooManyRequests, "TOOMANYREQUESTS", "Request was throttled.", nil}
	ErrUpstreamTimeout  = &Error{http.StatusGatewayTimeout, "UNSUPPORTED", "Response from the upstream timed out.", nil}
	ErrUpstreamBad      = &Error{http.StatusBadGateway, "UNSUPPORTED", "Invalid response received from the upstream.", nil}
	// ErrUpstreamUnavailable answers what needs an upstream whose circuit breaker is open.
	ErrUpstreamUnavailable = &Error{http.StatusServiceUnavailable, "UNAVAILABLE", "The upstream is unavailable; try again later.", nil}
	ErrTooManyNames        = &Error{http.StatusTooManyRequests, "TOOMANYREQUESTS", "Too many new names pulled through this distribution; try again later.", nil}
	ErrRangeInvalid        = &Error{http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID", "Requested range not satisfiable.", nil}

	// Errors of pushes.
	ErrBlobUploadUnknown   = &Error{http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "Upload not found.", nil}
	ErrBlobUploadInvalid   = &Error{http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "The chunk does not start where the upload ends.", nil}
	ErrUploadBadRequest    = &Error{http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "Invalid upload request.", nil}
	ErrManifestBlobUnknown = &Error{http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "Manifest references a blob that is not stored.", nil}
	ErrManifestTooLarge    = &Error{http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", "Manifest is larger than 4 MiB.", nil}
	ErrInvalidRequest      = &Error{http.StatusBadRequest, "INVALID_REQUEST", "Invalid request.", nil}
	ErrSizeInvalid         = &Error{http.StatusBadRequest, "SIZE_INVALID", "Content length does not match the upload.", nil}
)

// WithRetryAfter wraps e so that its answer tells the client when to try again (a
// Retry-After header of at least one second).
func WithRetryAfter(e *Error, after time.Duration) error { return &retryError{err: e, after: after} }

type retryError struct {
	err   *Error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter is how long the client should wait.
func (e *retryError) RetryAfter() time.Duration { return e.after }
