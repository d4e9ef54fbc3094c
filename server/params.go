package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// djangoParamError gives a parameter the generated binder could not read the answer Pulp gives
// it: a path parameter that is not what the URL pattern matches is 404 (Django does not route
// it); a query filter that is not a number or a date/time gets django-filter's form message.
// ok is false when the error is none of these.
func djangoParamError(c *gin.Context, field, msg string) (status int, body any, ok bool) {
	if c.Param(field) != "" {
		return http.StatusNotFound, detail("Not found."), true
	}
	switch {
	case strings.Contains(msg, "strconv.ParseInt"), strings.Contains(msg, "strconv.ParseFloat"):
		return http.StatusBadRequest, map[string][]string{field: {"Enter a number."}}, true
	case strings.Contains(msg, "as RFC3339"):
		return http.StatusBadRequest, map[string][]string{field: {"Enter a valid date/time."}}, true
	}
	return 0, nil, false
}

// djangoBoolean is the value django-filter's BooleanWidget reads from a query parameter
// ("true"/"1" and "false"/"0", any case); anything else it ignores, so the filter is dropped.
func djangoBoolean(v string) (string, bool) {
	switch strings.ToLower(v) {
	case "true", "1":
		return "true", true
	case "false", "0":
		return "false", true
	}
	return "", false
}
