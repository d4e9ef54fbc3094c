package pullthrough

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestFilters checks the pull-through remote's includes/excludes: an included name is pulled;
// an excluded one, or one outside includes, is 404 NAME_UNKNOWN before any upstream request,
// and nothing is created for it.
func TestFilters(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PushDebianLike(ctx, "library/debian"); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PushSmall(ctx, "other/busybox", "latest"); err != nil {
		t.Fatal(err)
	}
	e := startServer(t, testenv.Embedded(), "")
	e.createCache(t, cacheBase, cacheBase, hub.URL(),
		map[string]any{"includes": []string{"library/*"}, "excludes": []string{"library/debian"}}, nil)

	mustSkopeoCopy(t, e, "docker-cache/library/busybox:latest", busybox)

	before := hub.Counts()
	for _, name := range []string{"library/debian", "other/busybox"} {
		path := cacheBase + "/" + name
		expectRegError(t, e.reg, http.MethodGet, "/v2/"+path+"/manifests/10", 404, "NAME_UNKNOWN")
		expectRegError(t, e.reg, http.MethodGet, "/v2/"+path+"/manifests/latest", 404, "NAME_UNKNOWN")
		expectRegError(t, e.regAdmin, http.MethodGet, "/v2/"+path+"/manifests/latest", 404, "NAME_UNKNOWN")
		if r, _ := skopeoCopy(t, e, path+":10"); r.Code == 0 {
			t.Errorf("skopeo copied the filtered %s", path)
		} else if !strings.Contains(r.Stderr, "Repository not found") {
			t.Errorf("skopeo copy of the filtered %s: stderr lacks Pulp's \"Repository not found\":\n%s", path, r.Stderr)
		}
		for _, kind := range []string{"repositories", "remotes", "distributions"} {
			if res := e.api.List(t, "/pulp/api/v3/"+kind+"/container/container/", url.Values{"name": {path}}); len(res) != 0 {
				t.Errorf("a filtered name created %s: %v", kind, res)
			}
		}
	}
	if after := hub.Counts(); after != before {
		t.Errorf("filtered names reached the upstream:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestPrivate checks a private pull-through distribution: anonymous pulls get 401, the admin's
// credentials pull, and the child distribution inherits private.
func TestPrivate(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, testenv.Embedded(), "")
	e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, map[string]any{"private": true})
	const name = "docker-cache/library/busybox"

	before := hub.Counts()
	expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/latest", 401, "UNAUTHORIZED")
	if r, _ := skopeoCopy(t, e, name+":latest"); r.Code == 0 {
		t.Errorf("anonymous skopeo copy from a private pull-through distribution succeeded")
	}
	if after := hub.Counts(); after != before {
		t.Errorf("anonymous pulls from a private distribution reached the upstream:\nbefore %+v\nafter  %+v", before, after)
	}

	if r, dir := skopeoCopy(t, e, name+":latest", "--src-creds", harness.Username+":"+harness.Password); r.Code != 0 {
		// containers/image sends credentials only when the /v2/ ping challenged it.
		ping, err := e.reg.Request(ctx, http.MethodGet, "/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		ping.Body.Close()
		t.Errorf("skopeo copy --src-creds admin:password from the private distribution failed (exit %d):\n%s"+
			"(anonymous GET /v2/ answers %s, WWW-Authenticate %q: skopeo and podman send credentials only after a 401 challenge there)",
			r.Code, r.Stderr, ping.Status, ping.Header.Get("WWW-Authenticate"))
	} else {
		checkDirCopy(t, dir, busybox)
	}
	e.regAdmin.mustPull(t, name, "latest", busybox)

	child := e.api.byName(t, "/pulp/api/v3/distributions/container/container/", name)
	if child["private"] != true {
		t.Errorf("child distribution private = %v, want true (inherited)", child["private"])
	}
	// pulp_container creates the child with objects.get_or_create, bypassing the serializer
	// that attaches the "content redirect" guard: the child has none, its parent has it.
	if child["content_guard"] != nil || child["content_guard_prn"] != nil {
		t.Errorf("child distribution content_guard = %v, content_guard_prn = %v, want null as in Pulp", child["content_guard"], child["content_guard_prn"])
	}
	pt := e.api.byName(t, "/pulp/api/v3/distributions/container/pull-through/", cacheBase)
	if guard, _ := pt["content_guard"].(string); !strings.HasPrefix(guard, "/pulp/api/v3/contentguards/core/content_redirect/") {
		t.Errorf("pull-through distribution content_guard = %v, want the content redirect guard", pt["content_guard"])
	} else if g := e.api.Get(t, guard); g["name"] != "content redirect" {
		t.Errorf("pull-through distribution's guard %v, want the one named \"content redirect\"", g)
	}
	// Cached now, and still private.
	expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/latest", 401, "UNAUTHORIZED")
	expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/manifests/"+busybox.ManifestDigest, 401, "UNAUTHORIZED")
	expectRegError(t, e.reg, http.MethodGet, "/v2/"+name+"/blobs/"+busybox.Layers[0].Digest, 401, "UNAUTHORIZED")
	if r, _ := skopeoCopy(t, e, name+":latest"); r.Code == 0 {
		t.Errorf("anonymous skopeo copy of the cached private image succeeded")
	}
	resp, err := e.reg.Request(ctx, http.MethodGet, "/v2/"+name+"/manifests/latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate: clients will not send credentials")
	}
}

// TestReadOnly checks that the repository the cache created cannot be changed through the API
// (400 "Repository is read-only.", nothing changes) but can be deleted.
func TestReadOnly(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, testenv.Embedded(), "")
	e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
	const name = "docker-cache/library/busybox"
	mustSkopeoCopy(t, e, name+":latest", busybox)
	repo := e.api.waitRecorded(t, name, 1)
	href := client.Str(repo, "pulp_href")
	_, tagged := e.api.tagsOf(t, client.Str(repo, "latest_version_href"))

	for _, c := range []struct {
		method, path string
		body         map[string]any
	}{
		{http.MethodPatch, href, map[string]any{"description": "changed"}},
		{http.MethodPatch, href, map[string]any{"retain_repo_versions": 5}},
		{http.MethodPut, href, map[string]any{"name": name, "description": "changed"}},
		// The content actions of container repositories.
		{http.MethodPost, href + "add/", map[string]any{"content_units": []string{tagged["latest"]}}},
		{http.MethodPost, href + "remove/", map[string]any{"content_units": []string{tagged["latest"]}}},
		{http.MethodPost, href + "remove/", map[string]any{"content_units": []string{"*"}}},
		{http.MethodPost, href + "tag/", map[string]any{"tag": "other", "digest": busybox.ManifestDigest}},
		{http.MethodPost, href + "untag/", map[string]any{"tag": "latest"}},
		{http.MethodPost, href + "copy_tags/", map[string]any{"source_repository": href, "names": []string{"latest"}}},
		{http.MethodPost, href + "copy_manifests/", map[string]any{"source_repository": href, "digests": []string{busybox.ManifestDigest}}},
	} {
		status, raw := e.api.Do(t, c.method, c.path, c.body)
		if status == http.StatusAccepted {
			task := e.api.Get(t, client.Str(client.DecodeObject(t, raw), "task"))
			t.Errorf("%s %s %v: 202, task %v; want 400 read-only", c.method, c.path, c.body, task["pulp_href"])
			continue
		}
		if status != http.StatusBadRequest {
			t.Errorf("%s %s %v: %d %s, want 400 read-only", c.method, c.path, c.body, status, raw)
			continue
		}
		body := client.DecodeObject(t, raw)
		msg := client.Str(body, "detail")
		if msg == "" { // Pulp's field shape: {"non_field_errors": ["..."]} or {"field": ["..."]}
			for _, v := range body {
				if l, ok := v.([]any); ok && len(l) > 0 {
					msg, _ = l[0].(string)
				}
			}
		}
		if msg != "Repository is read-only." {
			t.Errorf("%s %s: %s, want {\"detail\": \"Repository is read-only.\"}", c.method, c.path, raw)
		}
	}
	after := e.api.Get(t, href)
	for _, k := range []string{"name", "description", "retain_repo_versions", "latest_version_href", "pulp_last_updated"} {
		if !equalJSON(after[k], repo[k]) {
			t.Errorf("repository %s changed from %v to %v", k, repo[k], after[k])
		}
	}
	if tags, _ := e.api.tagsOf(t, client.Str(after, "latest_version_href")); !equalJSON(tags, []string{"latest"}) {
		t.Errorf("tags after the refused changes: %v, want [latest]", tags)
	}
	if versions := e.api.List(t, client.Str(after, "versions_href"), nil); len(versions) != 1 {
		t.Errorf("%d versions after the refused changes, want 1", len(versions))
	}
	// The cache itself still records into it: a new tag of the image makes version 2.
	if _, err := hub.PushSmall(ctx, "library/busybox", "stable"); err != nil {
		t.Fatal(err)
	}
	mustSkopeoCopy(t, e, name+":stable", busybox)
	after = e.api.waitRecorded(t, name, 2)
	if tags, _ := e.api.tagsOf(t, client.Str(after, "latest_version_href")); !equalJSON(tags, []string{"latest", "stable"}) {
		t.Errorf("tags after pulling :stable: %v, want [latest stable]", tags)
	}

	status, raw := e.api.Do(t, http.MethodDelete, href, nil)
	if status != http.StatusAccepted {
		t.Fatalf("DELETE %s: %d %s, want 202", href, status, raw)
	}
	e.api.WaitTask(t, client.Str(client.DecodeObject(t, raw), "task"))
	if status, raw := e.api.Do(t, http.MethodGet, href, nil); status != http.StatusNotFound {
		t.Errorf("GET %s after delete: %d %s, want 404", href, status, raw)
	}
}
