package oci

import (
	"errors"
	"net/http"
)

// Error is a registry error in the distribution spec's terms.
type Error struct {
	Status  int
	Code    string
	Message string
	Detail  map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is matches errors with the same code, so errors.Is(err, ErrBlobUnknown) works on copies
// that carry details.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
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
	ErrRangeInvalid     = &Error{http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID", "Requested range not satisfiable.", nil}
)
