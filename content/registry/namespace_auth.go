package registry

import "strings"

// namespaceOwner reports whether user owns the namespace of repository name: its first path
// component, or the whole name when it has no slash, equals the username. It is Pulp's rule that
// a user may create (and so push to, and pull from) the namespace named after them; an
// anonymous caller ("") owns nothing.
func namespaceOwner(user, name string) bool {
	if user == "" {
		return false
	}
	ns, _, _ := strings.Cut(name, "/")
	return ns == user
}
