package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

var cidPattern = regexp.MustCompile(`^(?i:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

const cidKey = "pulpgo.cid"

// correlationID echoes a valid incoming Correlation-ID (a UUID) or makes a new one, and sends
// it spelled exactly "Correlation-ID", as Pulp does and pulp-cli's tests expect.
func correlationID(c *gin.Context) {
	cid := c.GetHeader("Correlation-ID")
	if !cidPattern.MatchString(cid) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cid = hex.EncodeToString(b[:])
	}
	c.Set(cidKey, cid)
	h := c.Writer.Header()
	h["Correlation-ID"] = []string{cid}
	h.Set("Access-Control-Expose-Headers", "Correlation-ID")
	c.Next()
}

// principalKey is where authenticate leaves the request's user in the Gin context.
const principalKey = "pulpgo.principal"

// caller is the user the request authenticated as (the admin for anonymous operations, which
// dispatch nothing).
func caller(c *gin.Context) models.Principal {
	if p, ok := c.Get(principalKey); ok {
		return p.(models.Principal)
	}
	return models.Principal{ID: 1, Username: models.AdminUsername, Superuser: true}
}

// errPermissionDenied is DRF's 403 for an authenticated user the access policy refuses.
var errPermissionDenied = errDetail(http.StatusForbidden, "You do not have permission to perform this action.")

// authenticate requires HTTP Basic credentials of an active user on every operation the spec
// protects; status, livez and the API document are anonymous. Nobody is the admin while the
// configured password is empty. It then authorizes: superusers may do anything; other users
// may only read, and not users (permitted).
func (s *Server) authenticate(c *gin.Context) {
	op := s.spec.operation(c)
	if op == nil || op.anonymous {
		c.Next()
		return
	}
	user, pass, ok := c.Request.BasicAuth()
	if !ok {
		msg := "Authentication credentials were not provided."
		if f := strings.Fields(c.GetHeader("Authorization")); len(f) > 0 && strings.EqualFold(f[0], "basic") {
			// DRF's BasicAuthentication on a Basic header it cannot read.
			switch {
			case len(f) == 1:
				msg = "Invalid basic header. No credentials provided."
			case len(f) > 2:
				msg = "Invalid basic header. Credentials string should not contain spaces."
			default:
				msg = "Invalid basic header. Credentials not correctly base64 encoded."
			}
		}
		s.respond(c, errUnauthorized(msg))
		return
	}
	p, err := s.logins.Authenticate(c, user, pass)
	if errors.Is(err, models.ErrBadCredentials) {
		s.respond(c, errUnauthorized("Invalid username/password."))
		return
	}
	if err != nil {
		s.respond(c, err)
		return
	}
	c.Set(principalKey, p)
	if !permitted(p, c.Request.Method, op.id) {
		s.respond(c, errPermissionDenied)
		return
	}
	c.Next()
}

// permitted is the access policy: a superuser may do anything (Pulp's admin); another user
// may read every object and task but change nothing, and may not see users (pulpcore's users
// endpoint is admin-only). Pulp's roles and object permissions are not implemented
// (docs/api.md).
func permitted(p models.Principal, method, opID string) bool {
	if p.Superuser {
		return true
	}
	if strings.HasPrefix(opID, "users_") {
		return false
	}
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// checkQuery rejects query parameters that the operation does not declare, as Pulp's filter
// sets do: {"errors": ["Invalid Filter: 'x'"]}.
func (s *Server) checkQuery(c *gin.Context) {
	op := s.spec.operation(c)
	if op == nil || c.Request.Method != http.MethodGet {
		c.Next()
		return
	}
	q := c.Request.URL.Query()
	for name := range q {
		if !op.query[name] {
			s.respond(c, &models.FilterError{Msg: "Invalid Filter: '" + name + "'"})
			return
		}
	}
	// A NUL in a filter value fails its form field, as in DRF (limit and offset are
	// dropped below instead).
	for name, vals := range q {
		if name == "limit" || name == "offset" {
			continue
		}
		for _, v := range vals {
			if strings.ContainsRune(v, 0) {
				s.respond(c, models.NewValidationError(name, msgNullCharacters))
				return
			}
		}
	}
	// A value a choice filter does not offer is django-filter's form error.
	for name, vals := range q {
		pc, ok := op.choices[name]
		if !ok {
			continue
		}
		for _, v := range vals {
			items := []string{v}
			if pc.comma {
				items = strings.Split(v, ",")
			}
			for _, it := range items {
				if !pc.values[it] {
					s.respond(c, models.NewValidationError(name, "Select a valid choice. "+it+" is not one of the available choices."))
					return
				}
			}
		}
	}
	// Pulp (DRF) ignores a limit or offset that is not an integer; the generated binder would
	// reject it, so drop it here.
	dropped := false
	for _, name := range []string{"limit", "offset"} {
		if v, ok := q[name]; ok {
			if _, err := strconv.Atoi(v[0]); err != nil {
				q.Del(name)
				dropped = true
			}
		}
	}
	// django-filter ignores a boolean it cannot read (online=perhaps filters nothing).
	for name, vals := range q {
		if op.boolean[name] {
			if v, ok := djangoBoolean(vals[0]); !ok {
				q.Del(name)
				dropped = true
			} else if v != vals[0] {
				q[name] = []string{v}
				dropped = true
			}
		}
	}
	if dropped {
		c.Request.URL.RawQuery = q.Encode()
	}
	c.Next()
}

// allowHeader sends the Allow header of the matched route, as Pulp does on every response.
func (s *Server) allowHeader(c *gin.Context) {
	if allow, ok := s.spec.allow[c.FullPath()]; ok {
		c.Header("Allow", allow)
	}
	c.Next()
}

// noMethod answers a method the route does not have: OPTIONS describes the endpoint (200),
// anything else gets Pulp's 405. Gin has set Allow to the route's own methods.
func (s *Server) noMethod(c *gin.Context) {
	h := c.Writer.Header()
	allowed := h.Get("Allow")
	if strings.Contains(allowed, "GET") {
		allowed += ", HEAD"
	}
	if allowed != "" {
		h.Set("Allow", allowed+", OPTIONS")
	}
	if c.Request.Method == http.MethodOptions && allowed != "" {
		s.respond(c, writeJSON(c, http.StatusOK, map[string]any{
			"name":    c.Request.URL.Path,
			"renders": []string{"application/json"},
			"parses":  []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"},
		}))
		return
	}
	s.respond(c, errDetail(http.StatusMethodNotAllowed, "Method \""+c.Request.Method+"\" not allowed."))
}

// errUnauthorized is DRF's 401 for Basic authentication, with its challenge.
func errUnauthorized(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, body: detail(msg),
		header: map[string]string{"WWW-Authenticate": `Basic realm="api"`}}
}
