package registry

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// errInternal is what clients see of a failure that is not a registry error; the details go
// to the log only.
var errInternal = &oci.Error{Status: http.StatusInternalServerError, Code: "UNSUPPORTED", Message: "Internal server error."}

// errUnavailable is what clients see when a dependency (the database, Redis, storage) failed
// rather than the request (models.IsUnavailable); the cause goes to the log only.
var errUnavailable = &oci.Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "Service unavailable; try again later.", Detail: nil}

// unavailableRetryAfter is the Retry-After of errUnavailable.
const unavailableRetryAfter = 5 * time.Second

// writeError answers err in the distribution spec's error format,
// {"errors":[{"code":…,"message":…,"detail":{…}}]}. An *oci.Error (wrapped or not) gives its
// status, code, message and detail; anything else is logged and answered 500. It is the one
// place errors become responses.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var e *oci.Error
	if !errors.As(err, &e) && models.IsUnavailable(err) {
		r.log.Warn("registry request failed: dependency unavailable", "method", req.Method, "path", req.URL.Path, "err", err)
		e, err = errUnavailable, oci.WithRetryAfter(errUnavailable, unavailableRetryAfter)
	}
	if e == nil {
		if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
			r.log.Debug("registry request cancelled", "method", req.Method, "path", req.URL.Path, "err", err)
		} else {
			r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		}
		e = errInternal
	}
	h := w.Header()
	for _, k := range []string{"Content-Length", "Accept-Ranges", "ETag", "Last-Modified", headerContentDigest} {
		h.Del(k)
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(ra.RetryAfter().Seconds())))))
	}
	if e.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", r.challenge(req, err))
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"code": e.Code, "message": e.Message, "detail": detail}}})
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// detailed adds detail key: v to err when err is (or wraps) a registry error with target's
// code and no detail yet, so that errors from an Image name what was not found.
func detailed(err error, target *oci.Error, key string, v any) error {
	var e *oci.Error
	if errors.As(err, &e) && e.Code == target.Code && e.Detail == nil {
		return e.WithDetail(key, v)
	}
	return err
}
