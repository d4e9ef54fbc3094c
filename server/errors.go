package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

// writeJSON sends v with exactly "Content-Type: application/json", as pulp-cli requires.
func writeJSON(c *gin.Context, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"detail":"could not encode the response"}`)
	}
	c.Data(code, "application/json", buf.Bytes())
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// fail renders err the way Pulp renders the same failure; it is the one place errors become
// responses.
func fail(c *gin.Context, err error) {
	var nf *models.NotFoundError
	var ve *models.ValidationError
	var fe *models.FilterError
	var bl *models.BareListError
	switch {
	case errors.As(err, &nf):
		writeJSON(c, http.StatusNotFound, detail(nf.Error()))
	case errors.As(err, &ve):
		writeJSON(c, http.StatusBadRequest, ve.Response())
	case errors.As(err, &fe):
		writeJSON(c, http.StatusBadRequest, map[string][]string{"errors": {fe.Msg}})
	case errors.As(err, &bl):
		writeJSON(c, http.StatusBadRequest, []string{bl.Msg})
	case errors.Is(err, models.ErrReadOnly):
		writeJSON(c, http.StatusBadRequest, detail(err.Error()))
	default:
		slog.Default().Error("internal error", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		writeJSON(c, http.StatusInternalServerError, detail("Internal server error: "+err.Error()))
	}
}

// notFound answers Pulp's 404 for a malformed id.
func notFound(c *gin.Context) { writeJSON(c, http.StatusNotFound, detail("Not found.")) }

// paramError renders the generated wrapper's parameter errors as Pulp field errors.
func paramError(c *gin.Context, err error, code int) {
	msg := err.Error()
	field := "detail"
	if i := strings.Index(msg, "parameter "); i >= 0 {
		rest := msg[i+len("parameter "):]
		if j := strings.IndexAny(rest, ": "); j > 0 {
			field = rest[:j]
		}
	}
	if status, body, ok := djangoParamError(c, field, msg); ok {
		writeJSON(c, status, body)
		return
	}
	writeJSON(c, code, map[string][]string{field: {msg}})
}

func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "path", c.Request.URL.Path, "panic", r, "stack", string(debug.Stack()))
				writeJSON(c, http.StatusInternalServerError, detail("Internal server error."))
				c.Abort()
			}
		}()
		c.Next()
	}
}
