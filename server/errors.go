package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

// Handlers return errors and respond renders them, as go-containerregistry's registry.go root()
// does: a handler writes only its successes, and every refusal or failure it meets, from the
// middlewares to the models, becomes Pulp's answer here and nowhere else.

// apiError is an answer of the HTTP layer that is not a model error: a status, Pulp's body for
// it (nil: no body) and the headers that go with it (WWW-Authenticate on a 401).
type apiError struct {
	status int
	body   any
	header map[string]string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %v", e.status, http.StatusText(e.status), e.body)
}

// errDetail is a status with Pulp's {"detail": msg} body.
func errDetail(status int, msg string) *apiError {
	return &apiError{status: status, body: detail(msg)}
}

// errNotFound is Pulp's 404 for a malformed id or a path that names no endpoint.
var errNotFound = errDetail(http.StatusNotFound, "Not found.")

// panicError is a panic recovered from a handler, with the stack where it happened.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// serverErrorBody is the page Pulp answers for an unexpected error in the API: pulpcore sets no
// handler500 and no DRF EXCEPTION_HANDLER for it, so an exception that DRF does not handle
// reaches Django's default server_error view, which renders this (DEBUG off, no 500.html).
const serverErrorBody = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n" +
	"<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"

// writeJSON sends v with exactly "Content-Type: application/json", as pulp-cli requires. It
// writes nothing and returns the error when v cannot be encoded.
func writeJSON(c *gin.Context, code int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	c.Data(code, "application/json", buf.Bytes())
	return nil
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// respond ends every handler and middleware that refuses a request: nil means the handler has
// written its answer; any other error is rendered the way Pulp renders the same failure, and
// the rest of the chain does not run. An unexpected error is logged with the request's
// correlation id and answered with Pulp's 500 page, which tells the client nothing of it.
func (s *Server) respond(c *gin.Context, err error) {
	if err == nil {
		return
	}
	c.Abort()
	var ae *apiError
	var nf *models.NotFoundError
	var ve *models.ValidationError
	var fe *models.FilterError
	var bl *models.BareListError
	switch {
	case errors.As(err, &ae):
		for k, v := range ae.header {
			c.Header(k, v)
		}
		if ae.body == nil {
			c.Status(ae.status)
			return
		}
		_ = writeJSON(c, ae.status, ae.body)
	case errors.As(err, &nf):
		_ = writeJSON(c, http.StatusNotFound, detail(nf.Error()))
	case errors.As(err, &ve):
		_ = writeJSON(c, http.StatusBadRequest, ve.Response())
	case errors.As(err, &fe):
		_ = writeJSON(c, http.StatusBadRequest, map[string][]string{"errors": {fe.Msg}})
	case errors.As(err, &bl):
		_ = writeJSON(c, http.StatusBadRequest, []string{bl.Msg})
	case errors.Is(err, models.ErrReadOnly):
		_ = writeJSON(c, http.StatusBadRequest, detail(err.Error()))
	case models.IsUnavailable(err):
		// DRF's ServiceUnavailable: the database, Redis or storage failed, not the request.
		s.deps.Logger.Warn("dependency unavailable", "cid", c.GetString(cidKey), "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		c.Header("Retry-After", retryAfterUnavailable)
		_ = writeJSON(c, http.StatusServiceUnavailable, detail("Service temporarily unavailable, try again later."))
	default:
		attrs := []any{"cid", c.GetString(cidKey), "method", c.Request.Method, "path", c.Request.URL.Path, "err", err}
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, "stack", pe.stack)
		}
		s.deps.Logger.Error("internal error", attrs...)
		c.Data(http.StatusInternalServerError, "text/html; charset=utf-8", []byte(serverErrorBody))
	}
}

// retryAfterUnavailable is the Retry-After, in seconds, of a 503 for a failed dependency.
const retryAfterUnavailable = "5"

// paramError turns the generated wrapper's parameter errors into Pulp field errors.
func (s *Server) paramError(c *gin.Context, err error, code int) {
	msg := err.Error()
	field := "detail"
	if i := strings.Index(msg, "parameter "); i >= 0 {
		rest := msg[i+len("parameter "):]
		if j := strings.IndexAny(rest, ": "); j > 0 {
			field = rest[:j]
		}
	}
	if status, body, ok := djangoParamError(c, field, msg); ok {
		s.respond(c, &apiError{status: status, body: body})
		return
	}
	s.respond(c, &apiError{status: code, body: map[string][]string{field: {msg}}})
}

// recovery turns a panic in a handler into a logged internal error.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.respond(c, &panicError{value: r, stack: string(debug.Stack())})
		}
	}()
	c.Next()
}
