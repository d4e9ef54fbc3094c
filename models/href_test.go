package models_test

import (
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

func TestParseRef(t *testing.T) {
	const id = "01a20ff1-97ca-73c4-a9a8-06618596c37c"
	v := func(n int64) *int64 { return &n }
	cases := []struct {
		in      string
		ok      bool
		kind    models.Kind
		version *int64
	}{
		{"/pulp/api/v3/remotes/container/container/" + id + "/", true, models.KindContainerRemote, nil},
		{"/pulp/api/v3/remotes/container/pull-through/" + id + "/", true, models.KindPullThroughRemote, nil},
		{"/pulp/api/v3/repositories/container/container/" + id + "/", true, models.KindContainerRepository, nil},
		{"/pulp/api/v3/repositories/container/container-push/" + id + "/", true, models.KindPushRepository, nil},
		{"/pulp/api/v3/distributions/container/container/" + id + "/", true, models.KindContainerDistribution, nil},
		{"/pulp/api/v3/distributions/container/pull-through/" + id + "/", true, models.KindPullThroughDist, nil},
		{"/pulp/api/v3/pulp_container/namespaces/" + id + "/", true, models.KindNamespace, nil},
		{"/pulp/api/v3/content/container/blobs/" + id + "/", true, models.KindBlob, nil},
		{"/pulp/api/v3/content/container/manifests/" + id + "/", true, models.KindManifest, nil},
		{"/pulp/api/v3/content/container/tags/" + id + "/", true, models.KindTag, nil},
		{"/pulp/api/v3/tasks/" + id + "/", true, models.KindTask, nil},
		{"/pulp/api/v3/workers/" + id + "/", true, models.KindWorker, nil},
		// Versions.
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/0/", true, models.KindContainerRepository, v(0)},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/12/", true, models.KindContainerRepository, v(12)},
		{"/pulp/api/v3/repositories/container/container-push/" + id + "/versions/3/", true, models.KindPushRepository, v(3)},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/-1/", false, models.Kind{}, nil},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/x/", false, models.Kind{}, nil},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/1", false, models.Kind{}, nil},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/" + id + "/versions/1/", false, models.Kind{}, nil},
		// Absolute URLs.
		{"http://localhost:24817/pulp/api/v3/remotes/container/container/" + id + "/", true, models.KindContainerRemote, nil},
		{"https://pulp.example/pulp/api/v3/repositories/container/container/" + id + "/versions/2/", true, models.KindContainerRepository, v(2)},
		{"http://localhost:24817/other/pulp/api/v3/tasks/" + id + "/", false, models.Kind{}, nil},
		// PRNs.
		{"prn:container.containerremote:" + id, true, models.KindContainerRemote, nil},
		{"prn:container.containerpullthroughdistribution:" + id, true, models.KindPullThroughDist, nil},
		{"prn:core.task:" + id, true, models.KindTask, nil},
		{"prn:core.repositoryversion:" + id, true, models.KindRepositoryVersion, nil},
		{"prn:core.nothing:" + id, false, models.Kind{}, nil},
		{"prn:container.containerremote:not-a-uuid", false, models.Kind{}, nil},
		{"prn:container.containerremote:" + id + ":x", false, models.Kind{}, nil},
		{"prn:container.containerremote", false, models.Kind{}, nil},
		// Junk.
		{"", false, models.Kind{}, nil},
		{"junk", false, models.Kind{}, nil},
		{"/pulp/api/v3/", false, models.Kind{}, nil},
		{"/pulp/api/v3/nope/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/" + id, false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/not-a-uuid/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/" + id + "/extra/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/01a20ff197ca73c4a9a806618596c37c/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/" + id + "/", false, models.Kind{}, nil},
		{"pulp/api/v3/tasks/" + id + "/", false, models.Kind{}, nil},
		// Traversal.
		{"/pulp/api/v3/remotes/container/container/../../x/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/../../../tasks/" + id + "/", false, models.Kind{}, nil},
		{"/pulp/api/v3/remotes/container/container/" + id + "/../../pull-through/" + id + "/", false, models.Kind{}, nil},
		{"/pulp/api/v3/../api/v3/tasks/" + id + "/", false, models.Kind{}, nil},
		{"/pulp/api/v3/repositories/container/container/" + id + "/versions/../", false, models.Kind{}, nil},
		{"/pulp/api/v3/tasks/./" + id + "/", false, models.Kind{}, nil},
		{"http://h/pulp/api/v3/remotes/container/container/%2e%2e/%2e%2e/tasks/" + id + "/", false, models.Kind{}, nil},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			r, ok := models.ParseRef(c.in)
			if ok != c.ok {
				t.Fatalf("ok = %v (%+v), want %v", ok, r, c.ok)
			}
			if !ok {
				return
			}
			if r.Kind != c.kind || r.ID != id {
				t.Errorf("got %s %s, want %s %s", r.Kind.Model, r.ID, c.kind.Model, id)
			}
			if (r.Version == nil) != (c.version == nil) || (r.Version != nil && *r.Version != *c.version) {
				t.Errorf("version %v, want %v", r.Version, c.version)
			}
			// What parses as an object href renders back to itself.
			if c.version == nil && c.kind != models.KindRepositoryVersion && c.in[0] == '/' && c.kind.Href(r.ID) != c.in {
				t.Errorf("Href(%s) = %s", r.ID, c.kind.Href(r.ID))
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for in, want := range map[string]bool{
		"01a20ff1-97ca-73c4-a9a8-06618596c37c":          true,
		"00000000-0000-0000-0000-000000000000":          true,
		"01a20ff197ca73c4a9a806618596c37c":              false,
		"{01a20ff1-97ca-73c4-a9a8-06618596c37c}":        false,
		"urn:uuid:01a20ff1-97ca-73c4-a9a8-06618596c37c": false,
		"":   false,
		"..": false,
	} {
		if got := models.ValidID(in); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", in, got, want)
		}
	}
	id := models.NewID()
	if !models.ValidID(id) || id[14] != '7' {
		t.Errorf("NewID() = %s: want a canonical UUIDv7", id)
	}
}
