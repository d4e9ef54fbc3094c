package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

// DefaultTokenExpiration is how long a token is valid when Config.TokenExpiration is zero
// (Pulp's TOKEN_EXPIRATION_TIME, 300 s).
const DefaultTokenExpiration = 5 * time.Minute

// maxScopes bounds the scope parameters of one token request: each may cost a database
// lookup.
const maxScopes = 64

// tokenResponse is the body of GET /token/, as Pulp's BearerTokenView writes it.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// tokenError is an answer of the token endpoint, which speaks DRF's {"detail": ...} rather
// than the registry's error format (Pulp's view is no registry view).
type tokenError struct {
	status     int
	detail     string
	challenge  string
	retryAfter time.Duration
}

// tokenFailure is the token endpoint's answer to a failure that is not the request's: DRF's
// ServiceUnavailable (503, with a Retry-After) when a dependency failed (models.IsUnavailable:
// the database was needed to check credentials or grants), else its 500. The cause goes to
// the log only.
func (r *Registry) tokenFailure(err error, args ...any) *tokenError {
	if models.IsUnavailable(err) {
		r.log.Warn("token request failed: dependency unavailable", append(args, "err", err)...)
		return &tokenError{status: http.StatusServiceUnavailable, detail: "Service temporarily unavailable, try again later.", retryAfter: unavailableRetryAfter}
	}
	r.log.Error("token request failed", append(args, "err", err)...)
	return &tokenError{status: http.StatusInternalServerError, detail: "A server error occurred."}
}

func (e *tokenError) Error() string { return e.detail }

// serveToken answers GET /token/?service=<host>&scope=<type:name:actions>...: a token for
// the caller (a user or a pull-only user by Basic credentials, or anonymous; a pull-only
// user's subject is "htpasswd:<name>") granting, of each scope asked
// for, the actions the caller may take (Pulp's AuthorizationService; grant). Wrong
// credentials get 401 so that a login with them fails.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeTokenError(w, &tokenError{status: http.StatusMethodNotAllowed, detail: fmt.Sprintf("Method %q not allowed.", req.Method)})
		return
	}
	c, err := r.credentials(req)
	if _, _, basic := req.BasicAuth(); basic && err == nil && c.user == "" {
		// DRF's BasicAuthentication here, unlike the registry's: empty credentials
		// (`Basic Og==`) are wrong credentials, not anonymous.
		err = errBadCredentials
	}
	if err != nil && !errors.Is(err, errBadCredentials) {
		writeTokenError(w, r.tokenFailure(err))
		return
	}
	if err != nil {
		// DRF's BasicAuthentication: 401 with its challenge.
		writeTokenError(w, &tokenError{status: http.StatusUnauthorized, detail: "Invalid username/password.", challenge: `Basic realm="api"`})
		return
	}
	q := req.URL.Query()
	service, ok := q["service"]
	if !ok {
		writeTokenError(w, &tokenError{status: http.StatusBadRequest, detail: "No service name provided."})
		return
	}
	requested := q["scope"]
	if len(requested) > maxScopes {
		writeTokenError(w, &tokenError{status: http.StatusBadRequest, detail: fmt.Sprintf("Too many scopes: %d, at most %d.", len(requested), maxScopes)})
		return
	}
	access, err := r.grant(req, c, requested)
	if err != nil {
		writeTokenError(w, r.tokenFailure(err, "service", service[0]))
		return
	}
	now := r.now()
	ttl := r.tokenTTL()
	s, err := r.cfg.Tokens.Issue(now, ttl, r.realm(req), service[0], c.subject(), access)
	if err != nil {
		writeTokenError(w, r.tokenFailure(err, "service", service[0]))
		return
	}
	body, _ := json.Marshal(tokenResponse{Token: s, AccessToken: s, ExpiresIn: int64(ttl / time.Second),
		IssuedAt: now.UTC().Format("2006-01-02T15:04:05.000000Z")})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func writeTokenError(w http.ResponseWriter, e *tokenError) {
	body, _ := json.Marshal(map[string]string{"detail": e.detail})
	h := w.Header()
	if e.challenge != "" {
		h.Set("WWW-Authenticate", e.challenge)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.retryAfter/time.Second)))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// grant decides the access list of a token for caller c (anonymous, a user or a superuser)
// from the scopes asked for, with Pulp's rules: when any scope is not type:name:actions,
// nothing is granted (the token then opens /v2/ only); each scope is listed with the actions
// granted, possibly none. Push is granted, with pull, to superusers for every name and to
// other users in their own namespace (namespaceOwner), as Pulp lets a user create and push
// to the namespace named after them. Pull goes by mayPull. The catalog (registry:catalog:*)
// goes to everyone: anonymous callers see public distributions only.
func (r *Registry) grant(req *http.Request, c caller, requested []string) ([]token.Access, error) {
	access := []token.Access{}
	for _, s := range requested {
		if strings.Count(s, ":") != 2 {
			return []token.Access{}, nil
		}
	}
	for _, s := range requested {
		parts := strings.SplitN(s, ":", 3)
		a := token.Access{Type: parts[0], Name: parts[1], Actions: []string{}}
		actions := strings.Split(parts[2], ",")
		switch {
		case a.Type == "repository":
			if slices.Contains(actions, "push") && r.mayPush(c, a.Name) {
				a.Actions = append(a.Actions, "pull", "push")
			} else if slices.Contains(actions, "pull") {
				ok, err := r.mayPull(req, c, a.Name)
				if err != nil {
					return nil, err
				}
				if ok {
					a.Actions = append(a.Actions, "pull")
				}
			}
		case a.Type == "registry" && a.Name == "catalog" && slices.Contains(actions, "*"):
			a.Actions = append(a.Actions, "*")
		}
		access = append(access, a)
	}
	return access, nil
}

// mayPull reports whether caller c may pull the repository name: superusers anything, users
// every name in their own namespace (namespaceOwner; Pulp's namespace owners may pull its
// private content, and pull names it does not hold yet as a namespace creator); others what
// resolves to public content, including names below a public
// pull-through distribution that the cache has not created yet (so anonymous pulls fill the
// cache, where Pulp requires a user with pull-through permissions), and for pull-only
// (htpasswd) users the names below private pull-through distributions too. Unknown names are
// not granted to them, as Pulp grants them only to users who may create namespaces.
func (r *Registry) mayPull(req *http.Request, c caller, name string) (bool, error) {
	if c.admin || c.owns(name) {
		return true, nil
	}
	if !oci.ValidName(name) {
		return false, nil
	}
	t, err := r.resolve(req.Context(), name)
	if errors.Is(err, oci.ErrNameUnknown) {
		// A registry mirror's client asks for the upstream's name: it may pull it when it
		// may pull it below one of the mirrors' pull-through distributions.
		names, err := r.mirrorNames(req.Context(), name)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			if t, err := r.resolve(req.Context(), n); err == nil && mayRead(c, t) {
				return true, nil
			} else if err != nil && !errors.Is(err, oci.ErrNameUnknown) {
				return false, err
			}
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return mayRead(c, t), nil
}

// mayRead reports whether caller c, who owns nothing of it, may read target t: public content,
// and for pull-only users the images of private pull-through distributions.
func mayRead(c caller, t *target) bool {
	return !t.private() || c.pullOnly && t.pullThrough()
}

// tokenTTL is how long the tokens issued are valid.
func (r *Registry) tokenTTL() time.Duration {
	if r.cfg.TokenExpiration > 0 {
		return r.cfg.TokenExpiration
	}
	return DefaultTokenExpiration
}

// now is the registry's clock (Config.Now, for tests).
func (r *Registry) now() time.Time {
	if r.cfg.Now != nil {
		return r.cfg.Now()
	}
	return time.Now()
}
