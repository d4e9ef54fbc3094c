package registry

import "github.com/pulpgo/pulpgo/content/oci"

// mayPush reports whether caller c may push to, and delete from, the repository name: upload
// blobs, push manifests and tags, delete them. It is the one place that decides (the token
// endpoint grants push by it too). Superusers may push anywhere; another user only into the
// namespace named after them (Pulp's namespace_is_username), which their first push creates;
// a pull-only (htpasswd) user nowhere.
func (r *Registry) mayPush(c caller, name string) bool {
	return c.admin || c.owns(name)
}

// pushDenied is the error of a write that mayPush refused: a caller with a token lacks the
// scope; an anonymous caller is challenged to authenticate.
func pushDenied(c caller) error {
	if c.claims != nil {
		return errInsufficientScope
	}
	return oci.ErrUnauthorized
}
