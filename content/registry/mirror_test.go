package registry

import (
	"net/http"
	"testing"
)

// TestMirrorTarget: as a registry mirror, an unprefixed name goes below the default mirror's
// pull-through distribution (no ns, or ns=docker.io), a name an ordinary distribution serves
// keeps going there, an ns mapped to a distribution that does not exist and an unmapped ns are
// NAME_UNKNOWN.
func TestMirrorTarget(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Config{Mirrors: map[string]string{"docker.io": "docker-cache", "quay.io": "no-such-cache"}})
	run(t, srv, []call{
		{name: "unprefixed, no ns", path: "/v2/library/busybox/manifests/latest", status: http.StatusOK},
		{name: "unprefixed, ns=docker.io", path: "/v2/library/busybox/manifests/latest?ns=docker.io", status: http.StatusOK},
		{name: "prefixed", path: "/v2/docker-cache/library/busybox/manifests/latest", status: http.StatusOK},
		{name: "tags list", path: "/v2/library/busybox/tags/list", status: http.StatusOK},
		{name: "ordinary distribution", path: "/v2/test/manifests/latest", status: http.StatusOK},
		{name: "unmapped ns", path: "/v2/library/busybox/manifests/latest?ns=ghcr.io", status: http.StatusNotFound, code: "NAME_UNKNOWN"},
		{name: "ns mapped to nothing", path: "/v2/library/busybox/manifests/latest?ns=quay.io", status: http.StatusNotFound, code: "NAME_UNKNOWN"},
	})
	// Without mirrors the unprefixed name is unknown.
	plain := f.serve(t, Config{})
	run(t, plain, []call{{name: "no mirror", path: "/v2/library/busybox/manifests/latest", status: http.StatusNotFound, code: "NAME_UNKNOWN"}})
}
