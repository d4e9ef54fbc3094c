package registry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

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
	// errNoSuchUser answers a token whose subject is no active user (deleted or deactivated
	// since the token was issued).
	errNoSuchUser = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "No such user"}
)

// caller is who sent a registry request.
type caller struct {
	// user is the username of the caller's Basic credentials or of its token's subject; ""
	// for anonymous callers.
	user string
	// admin is set for a superuser (the admin): by its Basic credentials or a token issued
	// to it.
	admin bool
	// claims are those of the request's bearer token; nil when it sent none.
	claims *token.Claims
	// pullOnly is set for a user of Config.PullUsers (htpasswd): user is that file's name,
	// which owns no namespace and is no API user, even one of the same name.
	pullOnly bool
}

// anonymous reports whether the caller sent no credentials (or a token issued to nobody).
func (c caller) anonymous() bool { return c.user == "" && !c.admin }

// owns reports whether the caller owns the namespace of repository name (namespaceOwner); a
// pull-only user owns none.
func (c caller) owns(name string) bool { return !c.pullOnly && namespaceOwner(c.user, name) }

// pullOnlySubject prefixes the subject of tokens issued to pull-only users: no API username
// contains ":", so such a token names no API user, here or in a process without PullUsers.
const pullOnlySubject = "htpasswd:"

// subject is the token subject of the caller.
func (c caller) subject() string {
	if c.pullOnly {
		return pullOnlySubject + c.user
	}
	return c.user
}

// credentials reads the HTTP Basic credentials of req. No Authorization header, another
// scheme, and the empty credentials container clients send when they have none (`Basic Og==`)
// are anonymous (caller{}). An API user's password is checked first; credentials that are not
// an API user's are checked against PullUsers (a pull-only caller), so a name in both logs in
// as the API user with the API password and as the pull-only user with the htpasswd one.
// Credentials that are neither fail with errBadCredentials.
func (r *Registry) credentials(req *http.Request) (caller, error) {
	h := req.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "basic") {
		return caller{}, nil
	}
	u, pass, ok := req.BasicAuth()
	if ok && u == "" && pass == "" {
		return caller{}, nil
	}
	if !ok {
		return caller{}, errBadCredentials
	}
	p, err := r.logins.Authenticate(req.Context(), u, pass)
	if errors.Is(err, models.ErrBadCredentials) {
		// Not an API user's: maybe a pull-only user's. Either refusal reads the same.
		if r.cfg.PullUsers != nil && r.cfg.PullUsers.Authenticate(u, pass) {
			return caller{user: u, pullOnly: true}, nil
		}
		return caller{}, errBadCredentials
	}
	if err != nil {
		return caller{}, fmt.Errorf("check the credentials of %q: %w", u, err)
	}
	return caller{user: p.Username, admin: p.Superuser}, nil
}

// authenticate returns the caller of req. Without token authentication only Basic
// credentials count. With it, a bearer token must be valid (signed with our key, for this
// service, issued by this realm, not expired) and name an active user (looked up at most once
// per models.DefaultLoginTTL) or a pull-only user still in PullUsers; Basic credentials are
// still read (permit accepts a superuser's).
func (r *Registry) authenticate(req *http.Request) (caller, error) {
	if r.cfg.Tokens != nil {
		if raw, ok := bearer(req); ok {
			c, err := r.tokens.verify(r.cfg.Tokens, r.now(), raw, r.realm(req), req.Host)
			if err != nil || req.Host == "" {
				return caller{}, errInvalidToken
			}
			if c.Subject == "" {
				return caller{claims: c}, nil
			}
			if name, ok := strings.CutPrefix(c.Subject, pullOnlySubject); ok {
				if r.cfg.PullUsers == nil || !r.cfg.PullUsers.Has(name) {
					return caller{}, errNoSuchUser
				}
				return caller{user: name, pullOnly: true, claims: c}, nil
			}
			p, err := r.logins.Lookup(req.Context(), c.Subject)
			if errors.Is(err, models.ErrNoSuchUser) {
				return caller{}, errNoSuchUser
			}
			if err != nil {
				return caller{}, fmt.Errorf("look up the token's user %q: %w", c.Subject, err)
			}
			return caller{user: p.Username, admin: p.Superuser, claims: c}, nil
		}
	}
	return r.credentials(req)
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

// permit checks, with token authentication, that the caller may make a request on rt. An
// anonymous request without a token is challenged; a token must grant every scope the route
// needs, and on /v2/ must grant nothing (Pulp's rule: the token of a login is asked for
// without a scope). A user's Basic credentials may do what a token for them would grant.
func (r *Registry) permit(c caller, rt route, req *http.Request) error {
	if r.cfg.Tokens == nil {
		return nil
	}
	need := scopes(rt, req)
	var access []token.Access
	switch {
	case c.claims != nil:
		access = c.claims.Access
	case c.admin:
		return nil
	case c.user == "":
		return oci.ErrUnauthorized
	default:
		// A user's Basic credentials sent without a token (clients that send them keep
		// working): the request may do what a token issued to that user would grant.
		if len(need) == 0 {
			return nil
		}
		requested := make([]string, len(need))
		for i, s := range need {
			requested[i] = s.String()
		}
		granted, err := r.grant(req, c, requested)
		if err != nil {
			return err
		}
		access = granted
	}
	if len(need) == 0 {
		if len(access) == 0 {
			return nil
		}
		return errInsufficientScope
	}
	for _, s := range need {
		if s.typ == "repository" && s.name != rt.name {
			continue // a mount's source: without pull on it, the mount falls back to an upload
		}
		for _, a := range strings.Split(s.action, ",") {
			if !token.Allows(access, s.typ, s.name, a) {
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

// authorize checks that caller c may read repository name, which resolved to t: anyone public
// content; private content needs a superuser or the owner of the name's namespace
// (namespaceOwner), or for the images of a private pull-through distribution a pull-only user.
func authorize(c caller, t *target, name string) error {
	if t.private() && !c.admin && !c.owns(name) && !(c.pullOnly && t.pullThrough()) {
		return oci.ErrUnauthorized
	}
	return nil
}
