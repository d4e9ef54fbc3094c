package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/pulpgo/pulpgo/content/oci"
)

// adminUser is the API user whose Basic credentials open private distributions.
const adminUser = "admin"

// basicChallenge is the WWW-Authenticate header of 401 answers.
const basicChallenge = `Basic realm="pulpgo"`

// errBadCredentials answers Basic credentials that name no user or carry a wrong password,
// on every route, so that `podman login` with a wrong password fails.
var errBadCredentials = &oci.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "Invalid username/password."}

// authenticate reports whether req carries the admin's HTTP Basic credentials. No
// Authorization header, another scheme (bearer tokens come later) and the empty credentials
// that container clients send when they have none (`Basic Og==`) are anonymous; other
// credentials that do not match fail with errBadCredentials.
func (r *Registry) authenticate(req *http.Request) (admin bool, err error) {
	user, pass, ok := req.BasicAuth()
	if !ok || (user == "" && pass == "") {
		return false, nil
	}
	if r.cfg.AdminPassword != "" && user == adminUser && equalSecret(pass, r.cfg.AdminPassword) {
		return true, nil
	}
	return false, errBadCredentials
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
