package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/token"
)

// adminUser is the API user whose credentials open private distributions.
const adminUser = "admin"

// basicChallenge is the WWW-Authenticate header of 401 answers without token authentication.
const basicChallenge = `Basic realm="pulpgo"`

// Registry errors of authentication, with Pulp's messages.
var (
	// errBadCredentials answers Basic credentials that name no user or carry a wrong
	// password, on every route, so that `podman login` with a wrong password fails.
	errBadCredentials = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "Invalid username/password."}
	// errInvalidToken answers a bearer token that is not ours, expired, or for another
	// service (challenge error "invalid_token").
	errInvalidToken = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "Access to the requested resource is not authorized. The provided Bearer token is invalid."}
	// errInsufficientScope answers a valid token that does not grant what the request needs
	// (challenge error "insufficient_scope").
	errInsufficientScope = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "Insufficient permissions"}
	// errNoSuchUser answers a token whose subject is no user.
	errNoSuchUser = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "No such user"}
)

// caller is who sent a registry request.
type caller struct {
	// admin is set for the admin's Basic credentials or a token issued to the admin.
	admin bool
	// claims are those of the request's bearer token; nil when it sent none.
	claims *token.Claims
}

// credentials reads the HTTP Basic credentials of req. No Authorization header, another
// scheme, and the empty credentials container clients send when they have none (`Basic Og==`)
// are anonymous (user ""); credentials that are not the admin's fail with errBadCredentials.
func (r *Registry) credentials(req *http.Request) (user string, err error) {
	h := req.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "basic") {
		return "", nil
	}
	u, pass, ok := req.BasicAuth()
	if ok && u == "" && pass == "" {
		return "", nil
	}
	if ok && r.cfg.AdminPassword != "" && u == adminUser && equalSecret(pass, r.cfg.AdminPassword) {
		return adminUser, nil
	}
	return "", errBadCredentials
}

// authenticate returns the caller of req. Without token authentication only Basic
// credentials count. With it, a bearer token must be valid (signed with our key, for this
// service, issued by this realm, not expired) and name an existing user; the admin's Basic
// credentials are still accepted as they are.
func (r *Registry) authenticate(req *http.Request) (caller, error) {
	if r.cfg.Tokens != nil {
		if raw, ok := bearer(req); ok {
			c, err := r.tokens.verify(r.cfg.Tokens, r.now(), raw, r.realm(req), req.Host)
			if err != nil || req.Host == "" {
				return caller{}, errInvalidToken
			}
			switch c.Subject {
			case "":
				return caller{claims: c}, nil
			case adminUser:
				return caller{admin: true, claims: c}, nil
			}
			return caller{}, errNoSuchUser
		}
	}
	user, err := r.credentials(req)
	return caller{admin: user == adminUser}, err
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(req *http.Request) (string, bool) {
	scheme, raw, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	return strings.TrimSpace(raw), true
}

// scope is one resource and action a registry request needs, in the token's terms.
type scope struct{ typ, name, action string }

func (s scope) String() string { return s.typ + ":" + s.name + ":" + s.action }

// scopes returns what a request on route rt needs, as Pulp's get_scopes does: pull on the
// repository for reads, pull and push for writes (uploads, manifest pushes, deletes), plus
// pull on the source of a cross-repository mount; the catalog for /v2/_catalog; nothing for
// /v2/.
func scopes(rt route, req *http.Request) []scope {
	switch rt.kind {
	case routeBase, routeUnknown:
		return nil
	case routeCatalog:
		return []scope{{"registry", "catalog", "*"}}
	}
	if !isWrite(rt, req) {
		return []scope{{"repository", rt.name, "pull"}}
	}
	need := []scope{{"repository", rt.name, "pull,push"}}
	if from, ok := mountSource(req); ok && oci.ValidName(from) {
		need = append(need, scope{"repository", from, "pull"})
	}
	return need
}

// isWrite reports whether a request on rt changes the repository: every upload request, and
// every method but GET and HEAD.
func isWrite(rt route, req *http.Request) bool {
	return rt.kind == routeUpload || (req.Method != http.MethodGet && req.Method != http.MethodHead)
}

// permit checks, with token authentication, that the caller may make a request on rt. A
// request without a token (and without the admin's Basic credentials) is challenged; a token
// must grant every scope the route needs, and on /v2/ must grant nothing (Pulp's rule: the
// token of a login is asked for without a scope).
func (r *Registry) permit(c caller, rt route, req *http.Request) error {
	if r.cfg.Tokens == nil {
		return nil
	}
	if c.claims == nil {
		if c.admin {
			return nil
		}
		return oci.ErrUnauthorized
	}
	need := scopes(rt, req)
	if len(need) == 0 {
		if len(c.claims.Access) == 0 {
			return nil
		}
		return errInsufficientScope
	}
	for _, s := range need {
		if s.typ == "repository" && s.name != rt.name {
			continue // a mount's source: without pull on it, the mount falls back to an upload
		}
		for _, a := range strings.Split(s.action, ",") {
			if !token.Allows(c.claims.Access, s.typ, s.name, a) {
				return errInsufficientScope
			}
		}
	}
	return nil
}

// challenge returns the WWW-Authenticate header of a 401 answered to req for err: Basic
// without token authentication; otherwise Pulp's Bearer challenge naming the realm, the
// service (the request's host) and the scope the request needs, with the error of a bad or
// insufficient token.
func (r *Registry) challenge(req *http.Request, err error) string {
	if r.cfg.Tokens == nil {
		return basicChallenge
	}
	var b strings.Builder
	b.WriteString(`Bearer realm="` + quoteSafe(r.realm(req)) + `",service="` + quoteSafe(req.Host) + `"`)
	rt := parseRoute(req.URL.EscapedPath())
	if rt.kind == routeCatalog || oci.ValidName(rt.name) {
		for _, s := range scopes(rt, req) {
			b.WriteString(`,scope="` + s.String() + `"`)
		}
	}
	switch {
	case errors.Is(err, errInvalidToken):
		b.WriteString(`,error="invalid_token"`)
	case errors.Is(err, errInsufficientScope):
		b.WriteString(`,error="insufficient_scope"`)
	}
	return b.String()
}

// realm is the URL of the token endpoint clients are sent to, and the issuer of the tokens
// it hands out: <content origin>/token/ when the origin is configured (Pulp's TOKEN_SERVER),
// otherwise the request's own scheme and host.
func (r *Registry) realm(req *http.Request) string {
	if r.cfg.ContentOrigin != "" {
		return strings.TrimSuffix(r.cfg.ContentOrigin, "/") + "/token/"
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + "/token/"
}

// quoteSafe escapes what would end a quoted header parameter.
func quoteSafe(s string) string {
	return strings.NewReplacer(`"`, "%22", `\`, "%5C").Replace(s)
}

// authorize checks that a caller may read a repository: private ones need the admin.
func authorize(private, admin bool) error {
	if private && !admin {
		return oci.ErrUnauthorized
	}
	return nil
}

// equalSecret compares a and b in time independent of their contents and lengths.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
