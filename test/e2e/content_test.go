package e2e_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestPulpCLIContentAndOrphans gets an image into container repositories the way a user can
// without sync (a pull through the cache, then copy-tag and copy-manifest), then drives the
// content queries, version commands, content add/remove, container remote fields and orphan
// cleanup with pulp-cli, and checks with httpie that what orphan cleanup removed is gone from
// the database and from storage.
func TestPulpCLIContentAndOrphans(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		hub, img, cached := pullThrough(t, e, func(ctx context.Context, hub *upstream.Upstream) (upstream.Image, error) {
			return hub.PushSmall(ctx, "library/busybox", "latest")
		})
		p := &pulpCLI{e: e}
		var blobs []string
		for _, b := range img.Blobs() {
			blobs = append(blobs, b.Digest)
		}
		p.must(t, "--refresh-api", "status")

		// Content into repositories of our own: copy-tag, then copy-manifest.
		p.must(t, "container", "repository", "create", "--name", "copy")
		p.must(t, "container", "repository", "copy-tag", "--name", "copy", "--source", cached, "--tag", "latest")
		p.must(t, "container", "repository", "create", "--name", "copy2")
		p.must(t, "container", "repository", "copy-manifest", "--name", "copy2", "--source", "copy", "--digest", img.ManifestDigest)
		v1 := p.object(t, "container", "repository", "show", "--name", "copy")["latest_version_href"].(string)

		// Content queries.
		tags := p.list(t, "container", "content", "--type", "tag", "list", "--repository-version", v1)
		if len(tags) != 1 || tags[0]["name"] != "latest" {
			t.Fatalf("tags of %s: %v", v1, tags)
		}
		// pulp-cli sends a tag's --digest and --media-type as strings where Pulp's document
		// (and ours) declares arrays, so it refuses them before sending: httpie asks instead.
		var out harness.Result
		for _, q := range []string{"tags/?name=latest&digest=" + img.ManifestDigest, "tags/?media_type=" + url.QueryEscape(img.MediaType),
			"manifests/?media_type=" + url.QueryEscape(img.MediaType) + "&digest=" + img.ManifestDigest} {
			out = e.home.Run(t, "http", "--check-status", "--body", e.srv.URL+"/pulp/api/v3/content/container/"+q).Must(t)
			if got := jsonValue(t, out.Stdout).(map[string]any)["count"]; got != float64(1) {
				t.Errorf("%s: count %v, want 1", q, got)
			}
		}
		if got := p.list(t, "container", "content", "--type", "tag", "list", "--name-in", "latest", "--name-in", "nope"); len(got) != 1 {
			t.Errorf("tag by name__in: %v", got)
		}
		manifests := p.list(t, "container", "content", "--type", "manifest", "list", "--digest", img.ManifestDigest)
		if len(manifests) != 1 {
			t.Fatalf("manifest by digest: %v", manifests)
		}
		if got := p.list(t, "container", "content", "--type", "blob", "list", "--repository-version-added", v1); len(got) != len(blobs) {
			t.Errorf("blobs added in %s: %d, want %d", v1, len(got), len(blobs))
		}
		args := []string{"container", "content", "--type", "blob", "list"}
		for _, d := range blobs {
			args = append(args, "--digest-in", d)
		}
		if got := p.list(t, args...); len(got) != len(blobs) {
			t.Errorf("blobs by digest__in: %d, want %d", len(got), len(blobs))
		}
		if got := p.list(t, "container", "content", "--type", "manifest", "list", "--repository-version-removed", v1); len(got) != 0 {
			t.Errorf("manifests removed in %s: %v", v1, got)
		}
		m := p.object(t, "container", "content", "--type", "manifest", "show", "--digest", img.ManifestDigest)
		wantFields(t, "manifest", m, map[string]any{"digest": img.ManifestDigest, "media_type": img.MediaType, "type": "image",
			"is_bootable": false, "is_flatpak": false, "listed_manifests": []any{}})
		if mb, _ := m["blobs"].([]any); len(mb) != len(img.Layers) || m["config_blob"] == nil {
			t.Errorf("manifest blobs %v, config_blob %v", m["blobs"], m["config_blob"])
		}
		r := p.fails(t, "container", "content", "--type", "tag", "list", "--repository-version",
			"/pulp/api/v3/repositories/container/container/"+missingID+"/versions/0/")
		if !strings.Contains(r.Stderr, "not found for repositoryversion.") {
			t.Errorf("unknown version: %s", r.Stderr)
		}

		// Versions and content add/remove.
		p.must(t, "container", "repository", "content", "--type", "manifest", "remove", "--repository", "copy2", "--digest", img.ManifestDigest)
		p.must(t, "container", "repository", "content", "--type", "tag", "add", "--repository", "copy2", "--name", "latest", "--digest", img.ManifestDigest)
		versions := p.list(t, "container", "repository", "version", "list", "--repository", "copy2")
		if len(versions) != 4 {
			t.Fatalf("%d versions of copy2, want 4 (0 to 3)", len(versions))
		}
		v2 := p.object(t, "container", "repository", "version", "show", "--repository", "copy2", "--version", "2")
		if removed := v2["content_summary"].(map[string]any)["removed"].(map[string]any); removed["container.manifest"] == nil {
			t.Errorf("version 2 of copy2 removed %v", removed)
		}
		p.must(t, "container", "repository", "version", "destroy", "--repository", "copy2", "--version", "2")
		if got := p.list(t, "container", "repository", "version", "list", "--repository", "copy2"); len(got) != 3 {
			t.Errorf("%d versions after destroy, want 3", len(got))
		}

		// The container remote's fields through pulp-cli.
		remote := p.object(t, "container", "remote", "create", "--name", "up", "--url", hub.URL(), "--upstream-name", "library/busybox",
			"--include-tags", `["latest", "1.*"]`, "--exclude-tags", `["*-rc"]`, "--policy", "on_demand", "--download-concurrency", "4")
		wantFields(t, "remote", remote, map[string]any{"includes": []any{"latest", "1.*"}, "excludes": []any{"*-rc"},
			"policy": "on_demand", "download_concurrency": float64(4)})
		if _, ok := remote["include_tags"]; ok {
			t.Error("include_tags shown")
		}
		r = p.fails(t, "container", "remote", "create", "--name", "bad", "--url", hub.URL(), "--upstream-name", "x", "--download-concurrency", "0")
		if !strings.Contains(r.Stderr, "is expected to not be smaller than 1") { // pulp-cli checks the document's minimum
			t.Errorf("download_concurrency 0: %s", r.Stderr)
		}
		out = e.home.Run(t, "http", "--body", "POST", e.srv.URL+remotesPath, "name=bad", "url="+hub.URL(), "upstream_name=x", "download_concurrency:=0")
		if strings.TrimSpace(out.Stdout) != `{"download_concurrency":["Ensure this value is greater than or equal to 1."]}` {
			t.Errorf("download_concurrency 0 through httpie: %s", out.Stdout)
		}

		// Orphan cleanup: content in a version of any repository (the cache's included) stays.
		task := p.object(t, "orphan", "cleanup", "--protection-time", "0")
		if task["state"] != "completed" || task["name"] != "pulpcore.app.tasks.orphan.orphan_cleanup" {
			t.Fatalf("orphan cleanup: %v", task)
		}
		if got := p.list(t, "container", "content", "--type", "manifest", "list", "--digest", img.ManifestDigest); len(got) != 1 {
			t.Fatal("orphan cleanup removed a manifest that versions hold")
		}
		// Once every repository holding it is gone, the image is an orphan: protected by the
		// default protection time, removed with its bytes by a cleanup with none.
		for _, name := range []string{"copy", "copy2", cached} {
			p.must(t, "container", "repository", "destroy", "--name", name)
		}
		if p.object(t, "orphan", "cleanup")["state"] != "completed" || len(p.list(t, "container", "content", "--type", "manifest", "list", "--digest", img.ManifestDigest)) != 1 {
			t.Fatal("the default protection time did not keep a fresh orphan")
		}
		if !stored(e, blobs[0]) {
			t.Fatalf("blob %s is not where the test looks for it", blobs[0])
		}
		p.must(t, "orphan", "cleanup", "--protection-time", "0")
		out = e.home.Run(t, "http", "--check-status", "--body", e.srv.URL+"/pulp/api/v3/content/container/blobs/?orphaned_for=0").Must(t)
		if got := jsonValue(t, out.Stdout).(map[string]any)["count"]; got != float64(0) {
			t.Errorf("orphaned blobs left: %v", got)
		}
		for _, d := range blobs {
			if len(p.list(t, "container", "content", "--type", "blob", "list", "--digest", d)) != 0 || stored(e, d) {
				t.Errorf("orphan blob %s survived (row or bytes)", d)
			}
		}
		r = p.fails(t, "orphan", "cleanup", "--content-hrefs", `["/pulp/api/v3/nope/"]`)
		if !strings.Contains(r.Stderr, `{"content_hrefs":["URI not valid: /pulp/api/v3/nope/"]}`) {
			t.Errorf("bad content_hrefs: %s", r.Stderr)
		}
	})
}

// pullThrough starts a local Docker Hub, pushes an image to it with push, makes the
// pull-through distribution "hub" of it, pulls the image (manifest and blobs) through it and
// waits until the cache has recorded it in version 1 of its repository. It returns the hub, the
// image and the repository's name.
func pullThrough(t *testing.T, e *env, push func(context.Context, *upstream.Upstream) (upstream.Image, error)) (*upstream.Upstream, upstream.Image, string) {
	t.Helper()
	ctx := client.Context(t)
	hub := client.StartHub(t)
	img, err := push(ctx, hub)
	if err != nil {
		t.Fatal(err)
	}
	api := &client.API{Base: e.srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "hub", hub.URL(), nil, nil)
	name := "hub/" + img.Name
	reg := &client.Registry{Base: e.srv.URL, HTTP: client.NewHTTPClient()}
	if _, _, _, err := reg.Manifest(ctx, name, img.Tag); err != nil {
		t.Fatal(err)
	}
	for _, b := range img.Blobs() {
		if _, err := reg.Blob(ctx, name, b.Digest); err != nil {
			t.Fatal(err)
		}
	}
	client.Poll(t, "the pull to be recorded", func() (bool, string) {
		repos := api.List(t, reposPath, url.Values{"name": {name}})
		if len(repos) != 1 || !strings.HasSuffix(client.Str(repos[0], "latest_version_href"), "/versions/1/") {
			return false, fmt.Sprintf("repositories %v", repos)
		}
		return true, ""
	})
	return hub, img, name
}

// TestOrphanCleanupKeepsBlobBeingRead: a client reads a large blob from an ordinary
// distribution; meanwhile every repository holding the blob is deleted, and an orphan cleanup
// with no protection time runs. The blob stays (row and bytes) and the client gets all of it;
// once the read has ended the next cleanup removes it.
func TestOrphanCleanupKeepsBlobBeingRead(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		_, img, cached := pullThrough(t, e, func(ctx context.Context, hub *upstream.Upstream) (upstream.Image, error) {
			return hub.PushLarge(ctx, "library/large", "1", 48, 1)
		})
		ctx := client.Context(t)
		p := &pulpCLI{e: e}
		p.must(t, "--refresh-api", "status")
		p.must(t, "container", "repository", "create", "--name", "large")
		p.must(t, "container", "repository", "copy-tag", "--name", "large", "--source", cached)
		p.must(t, "container", "distribution", "create", "--name", "large", "--base-path", "large", "--repository", "large")
		p.must(t, "container", "repository", "destroy", "--name", cached)

		layer := img.Layers[0].Digest
		reg := &client.Registry{Base: e.srv.URL, HTTP: client.NewHTTPClient(), User: harness.Username, Pass: harness.Password}
		resp, err := reg.Request(ctx, "GET", "/v2/large/blobs/"+layer, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET blob: %d", resp.StatusCode)
		}
		body := bufio.NewReader(resp.Body)
		if _, err := body.Peek(1); err != nil {
			t.Fatal(err)
		}
		// Deleting the distribution deletes its lone repository too, as pulp_container does.
		p.must(t, "container", "distribution", "destroy", "--name", "large")
		if r := p.run(t, "container", "repository", "show", "--name", "large"); r.Code == 0 {
			t.Fatal("repository large still exists")
		}
		p.must(t, "orphan", "cleanup", "--protection-time", "0")
		if len(p.list(t, "container", "content", "--type", "blob", "list", "--digest", layer)) != 1 || !stored(e, layer) {
			t.Fatal("the blob being read was removed")
		}
		h := sha256.New()
		if _, err := io.Copy(h, body); err != nil {
			t.Fatal(err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != layer {
			t.Fatalf("read %s, want %s", got, layer)
		}
		resp.Body.Close()
		client.Poll(t, "the blob to be removed once its read ended", func() (bool, string) {
			p.must(t, "orphan", "cleanup", "--protection-time", "0")
			n := len(p.list(t, "container", "content", "--type", "blob", "list", "--digest", layer))
			return n == 0 && !stored(e, layer), fmt.Sprintf("%d rows, stored %v", n, stored(e, layer))
		})
	})
}

// stored reports whether the server's storage holds the bytes of digest.
func stored(e *env, digest string) bool {
	hex := strings.TrimPrefix(digest, "sha256:")
	_, err := os.Stat(filepath.Join(e.srv.DataDir, "storage", "blobs", "sha256", hex[:2], hex))
	return err == nil
}
