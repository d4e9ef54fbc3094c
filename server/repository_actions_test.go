package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// actContent is the content the action tests work on: an index I listing the image manifests
// A and B, and a lone image C; each image has its own config blob and layer, and A and B share
// the layer L0. Tags: latest → I, a → A, v1 → C.
type actContent struct {
	blobs     map[string]*models.Blob     // cfgA, cfgB, cfgC, L0, La, Lb, Lc
	manifests map[string]*models.Manifest // I, A, B, C
	tags      map[string]*models.Tag      // latest, a, v1
}

// actDigest is a digest made from name.
func actDigest(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newActContent stores actContent in db, as a pull or a push would have.
func newActContent(t *testing.T, db *gorm.DB) *actContent {
	t.Helper()
	c := &actContent{blobs: map[string]*models.Blob{}, manifests: map[string]*models.Manifest{}, tags: map[string]*models.Tag{}}
	for _, n := range []string{"cfgA", "cfgB", "cfgC", "L0", "La", "Lb", "Lc"} {
		b, err := models.GetOrCreateBlob(db, &models.Blob{Digest: actDigest(n), Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		c.blobs[n] = b
	}
	image := func(name string, layers ...string) {
		var ids []string
		for _, l := range layers {
			ids = append(ids, c.blobs[l].ID)
		}
		m, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: actDigest(name), MediaType: models.MediaTypeOCIManifest,
			SchemaVersion: 2, ConfigBlobID: &c.blobs["cfg"+name].ID}, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.manifests[name] = m
	}
	image("A", "L0", "La")
	image("B", "L0", "Lb")
	image("C", "Lc")
	idx, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: actDigest("I"), MediaType: models.MediaTypeOCIIndex, SchemaVersion: 2},
		nil, []models.ManifestListManifest{{ManifestID: c.manifests["A"].ID}, {ManifestID: c.manifests["B"].ID}})
	if err != nil {
		t.Fatal(err)
	}
	c.manifests["I"] = idx
	for name, m := range map[string]string{"latest": "I", "a": "A", "v1": "C"} {
		tag, err := models.GetOrCreateTag(db, name, c.manifests[m].ID)
		if err != nil {
			t.Fatal(err)
		}
		c.tags[name] = tag
	}
	return c
}

// tag, manifest and blob return the hrefs of named units.
func (c *actContent) tag(n string) string      { return c.tags[n].Href() }
func (c *actContent) manifest(n string) string { return c.manifests[n].Href() }
func (c *actContent) blob(n string) string     { return c.blobs[n].Href() }

// summaryOf renders a version's content_summary compactly:
// "added: blob=5 manifest=3 tag=1 | removed: | present: blob=5 manifest=3 tag=1".
func summaryOf(t *testing.T, version map[string]any) string {
	t.Helper()
	cs, ok := version["content_summary"].(map[string]any)
	if !ok {
		t.Fatalf("version without content_summary: %v", version)
	}
	var parts []string
	for _, k := range []string{"added", "removed", "present"} {
		m, _ := cs[k].(map[string]any)
		var items []string
		for typ, v := range m {
			items = append(items, fmt.Sprintf("%s=%v", strings.TrimPrefix(typ, "container."), v.(map[string]any)["count"]))
		}
		sort.Strings(items)
		parts = append(parts, strings.TrimSpace(k+": "+strings.Join(items, " ")))
	}
	return strings.Join(parts, " | ")
}

// versionCount returns the number of versions of the repository at repo.
func (e *env) versionCount(repo string) int {
	e.t.Helper()
	return int(e.get(repo+"versions/").expect(e.t, http.StatusOK).obj(e.t)["count"].(float64))
}

// act POSTs body to the action of the repository at repo, waits for the task to complete and
// returns the task. It checks that the action made at most one version and that
// created_resources names it.
func (e *env) act(repo, action string, body any) map[string]any {
	e.t.Helper()
	before := e.versionCount(repo)
	task := e.waitTaskOK(e.post(repo+action+"/", body).taskHref(e.t))
	after := e.versionCount(repo)
	latest := e.get(repo).obj(e.t)["latest_version_href"].(string)
	created := task["created_resources"].([]any)
	made := false
	for _, h := range created {
		made = made || h == latest
	}
	switch {
	case after == before+1 && !made:
		e.t.Fatalf("%s made a version but created_resources is %v", action, created)
	case after == before && made:
		e.t.Fatalf("%s made no version but created_resources is %v", action, created)
	case after != before && after != before+1:
		e.t.Fatalf("%s made %d versions", action, after-before)
	}
	return task
}

// expectVersion checks that an action made a new version with summary want.
func (e *env) expectVersion(task map[string]any, want string) map[string]any {
	e.t.Helper()
	created := task["created_resources"].([]any)
	var vhref string
	for _, h := range created {
		if strings.Contains(h.(string), "/versions/") {
			vhref = h.(string)
		}
	}
	if vhref == "" {
		e.t.Fatalf("task made no version: created_resources %v", created)
	}
	v := e.get(vhref).expect(e.t, http.StatusOK).obj(e.t)
	if got := summaryOf(e.t, v); got != want {
		e.t.Fatalf("version %s:\n  got  %s\n  want %s", vhref, got, want)
	}
	return v
}

// expectNoVersion checks that an action changed nothing.
func (e *env) expectNoVersion(task map[string]any) {
	e.t.Helper()
	if created := task["created_resources"].([]any); len(created) != 0 {
		e.t.Fatalf("no-op made %v", created)
	}
}

// tagsIn returns "name→digest" of the tags of a version, sorted.
func (e *env) tagsIn(version string) []string {
	e.t.Helper()
	out := []string{}
	for _, tg := range e.get(api+"content/container/tags/?repository_version="+version).expect(e.t, http.StatusOK).results(e.t) {
		m := e.get(tg["tagged_manifest"].(string)).expect(e.t, http.StatusOK).obj(e.t)
		out = append(out, fmt.Sprintf("%s→%s", tg["name"], m["digest"]))
	}
	sort.Strings(out)
	return out
}

func TestActionAddRemove(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		repo := href(e.create(repositories, map[string]any{"name": "addrm"}))

		task := e.act(repo, "add", map[string]any{"content_units": []string{c.tag("latest")}})
		if task["name"] != "pulp_container.app.tasks.recursive_add.recursive_add_content" {
			t.Errorf("task name %v", task["name"])
		}
		rec := fmt.Sprint(task["reserved_resources_record"])
		if !strings.Contains(rec, "prn:container.containerrepository:"+repoID(repo)) {
			t.Errorf("reserved_resources_record %v", rec)
		}
		// A tag brings its index, the index its manifests, the manifests their blobs.
		e.expectVersion(task, "added: blob=5 manifest=3 tag=1 | removed: | present: blob=5 manifest=3 tag=1")

		t.Run("no-op add", func(t *testing.T) {
			e.expectNoVersion(e.act(repo, "add", map[string]any{"content_units": []string{c.tag("latest"), c.manifest("A")}}))
			e.expectNoVersion(e.act(repo, "add", map[string]any{}))
		})

		t.Run("add a tag of a present manifest", func(t *testing.T) {
			e.expectVersion(e.act(repo, "add", map[string]any{"content_units": []string{c.tag("a")}}),
				"added: tag=1 | removed: | present: blob=5 manifest=3 tag=2")
		})

		t.Run("remove what others need", func(t *testing.T) {
			// A is tagged by a and listed by I; L0 is used by A and B: nothing goes.
			e.expectNoVersion(e.act(repo, "remove", map[string]any{"content_units": []string{c.manifest("A"), c.blob("L0")}}))
			// Units that are not in the repository are ignored.
			e.expectNoVersion(e.act(repo, "remove", map[string]any{"content_units": []string{c.tag("v1")}}))
		})

		t.Run("remove a tag", func(t *testing.T) {
			// latest goes with I and B (only I needed them), and B's own blobs; A stays (tag a)
			// and so do its blobs, L0 included.
			v := e.expectVersion(e.act(repo, "remove", map[string]any{"content_units": []string{c.tag("latest")}}),
				"added: | removed: blob=2 manifest=2 tag=1 | present: blob=3 manifest=1 tag=1")
			if got := e.tagsIn(href(v)); fmt.Sprint(got) != fmt.Sprint([]string{"a→" + actDigest("A")}) {
				t.Errorf("tags %v", got)
			}
		})

		t.Run("remove everything", func(t *testing.T) {
			e.expectVersion(e.act(repo, "remove", map[string]any{"content_units": []string{"*"}}),
				"added: | removed: blob=3 manifest=1 tag=1 | present:")
			e.expectNoVersion(e.act(repo, "remove", map[string]any{"content_units": []string{"*"}}))
		})

		t.Run("add by PRN, blobs alone", func(t *testing.T) {
			e.expectVersion(e.act(repo, "add", map[string]any{"content_units": []string{"prn:container.blob:" + c.blobs["Lc"].ID}}),
				"added: blob=1 | removed: | present: blob=1")
		})

		t.Run("add an index", func(t *testing.T) {
			e.expectVersion(e.act(repo, "add", map[string]any{"content_units": []string{c.manifest("I")}}),
				"added: blob=5 manifest=3 | removed: | present: blob=6 manifest=3")
			// Removing the index takes its children and their blobs, not the unrelated Lc.
			e.expectVersion(e.act(repo, "remove", map[string]any{"content_units": []string{c.manifest("I")}}),
				"added: | removed: blob=5 manifest=3 | present: blob=1")
		})

		if n := e.versionCount(repo); n != 8 {
			t.Errorf("%d versions, want 8 (one per change)", n)
		}
	})
}

// repoID is the id in a repository href.
func repoID(h string) string {
	parts := strings.Split(strings.TrimSuffix(h, "/"), "/")
	return parts[len(parts)-1]
}

func TestActionTagUntag(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		repo := href(e.create(repositories, map[string]any{"name": "tags"}))
		e.expectVersion(e.act(repo, "add", map[string]any{"content_units": []string{c.manifest("I")}}),
			"added: blob=5 manifest=3 | removed: | present: blob=5 manifest=3")

		task := e.act(repo, "tag", map[string]any{"tag": "latest", "digest": actDigest("I")})
		if task["name"] != "pulp_container.app.tasks.tag.tag_image" {
			t.Errorf("task name %v", task["name"])
		}
		v := e.expectVersion(task, "added: tag=1 | removed: | present: blob=5 manifest=3 tag=1")
		if got := e.tagsIn(href(v)); fmt.Sprint(got) != fmt.Sprint([]string{"latest→" + actDigest("I")}) {
			t.Errorf("tags %v", got)
		}
		// The tag existed already (newActContent made it): only the version is created.
		if created := task["created_resources"].([]any); len(created) != 1 {
			t.Errorf("created_resources %v", created)
		}

		t.Run("same tag again", func(t *testing.T) {
			e.expectNoVersion(e.act(repo, "tag", map[string]any{"tag": "latest", "digest": actDigest("I")}))
		})

		t.Run("a new tag object is a created resource", func(t *testing.T) {
			task := e.act(repo, "tag", map[string]any{"tag": "brand-new", "digest": actDigest("B")})
			e.expectVersion(task, "added: tag=1 | removed: | present: blob=5 manifest=3 tag=2")
			created := fmt.Sprint(task["created_resources"])
			if !strings.Contains(created, api+"content/container/tags/") {
				t.Errorf("created_resources %v", created)
			}
			e.expectVersion(e.act(repo, "untag", map[string]any{"tag": "brand-new"}),
				"added: | removed: tag=1 | present: blob=5 manifest=3 tag=1")
		})

		t.Run("moving a tag replaces it", func(t *testing.T) {
			v := e.expectVersion(e.act(repo, "tag", map[string]any{"tag": "latest", "digest": actDigest("A")}),
				"added: tag=1 | removed: tag=1 | present: blob=5 manifest=3 tag=1")
			if got := e.tagsIn(href(v)); fmt.Sprint(got) != fmt.Sprint([]string{"latest→" + actDigest("A")}) {
				t.Errorf("tags %v", got)
			}
		})

		t.Run("adding a tag replaces the tag of that name", func(t *testing.T) {
			// The stored tag latest → I replaces latest → A.
			v := e.expectVersion(e.act(repo, "add", map[string]any{"content_units": []string{c.tag("latest")}}),
				"added: tag=1 | removed: tag=1 | present: blob=5 manifest=3 tag=1")
			if got := e.tagsIn(href(v)); fmt.Sprint(got) != fmt.Sprint([]string{"latest→" + actDigest("I")}) {
				t.Errorf("tags %v", got)
			}
		})

		t.Run("untag", func(t *testing.T) {
			task := e.act(repo, "untag", map[string]any{"tag": "latest"})
			if task["name"] != "pulp_container.app.tasks.untag.untag_image" {
				t.Errorf("task name %v", task["name"])
			}
			// The manifest stays.
			e.expectVersion(task, "added: | removed: tag=1 | present: blob=5 manifest=3")
			n := e.versionCount(repo) - 1
			e.post(repo+"untag/", map[string]any{"tag": "latest"}).bodyIs(t, 400, fmt.Sprintf(
				`{"non_field_errors": ["The tag 'latest' does not exist in the latest repository version '<Repository: tags; Version: %d>'"]}`, n))
		})

		t.Run("validation", func(t *testing.T) {
			r2 := href(e.create(repositories, map[string]any{"name": "r2"}))
			zero := "sha256:" + strings.Repeat("0", 64)
			e.post(r2+"tag/", map[string]any{"tag": "latest", "digest": zero}).bodyIs(t, 400,
				`{"non_field_errors": ["A manifest with the digest '`+zero+`' does not exist in the latest repository version '<Repository: r2; Version: 0>'"]}`)
			// The manifest exists, but not in this repository.
			e.post(r2+"tag/", map[string]any{"tag": "latest", "digest": actDigest("A")}).expect(t, 400)
			e.post(r2+"tag/", map[string]any{}).bodyIs(t, 400,
				`{"tag": ["This field is required."], "digest": ["This field is required."]}`)
			bad := `{"tag": ["The provided tag is not valid. A tag may contain lowercase and uppercase ASCII alphabetic characters, digits, underscores, periods, and dashes. A tag must not start with a period or a dash."]}`
			e.post(r2+"tag/", map[string]any{"tag": ".x", "digest": zero}).bodyIs(t, 400, bad)
			e.post(r2+"untag/", map[string]any{"tag": "a/b"}).bodyIs(t, 400, bad)
			e.post(r2+"untag/", map[string]any{"tag": " "}).bodyIs(t, 400, `{"tag": ["This field may not be blank."]}`)
			e.post(r2+"tag/", map[string]any{"tag": "x", "digest": zero, "foo": 1}).bodyIs(t, 400, `{"foo": ["Unexpected field"]}`)
			e.post(r2+"untag/", map[string]any{"tag": "nope"}).bodyIs(t, 400,
				`{"non_field_errors": ["The tag 'nope' does not exist in the latest repository version '<Repository: r2; Version: 0>'"]}`)
			if n := e.versionCount(r2); n != 1 {
				t.Errorf("r2 has %d versions", n)
			}
		})
	})
}

func TestActionCopy(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		src := href(e.create(repositories, map[string]any{"name": "src"}))
		e.expectVersion(e.act(src, "add", map[string]any{"content_units": []string{c.tag("latest"), c.tag("a"), c.tag("v1")}}),
			"added: blob=7 manifest=4 tag=3 | removed: | present: blob=7 manifest=4 tag=3")
		srcV1 := src + "versions/1/"

		t.Run("copy_tags", func(t *testing.T) {
			dst := href(e.create(repositories, map[string]any{"name": "dst-tags"}))
			task := e.act(dst, "copy_tags", map[string]any{"source_repository": src, "names": []string{"a"}})
			if task["name"] != "pulp_container.app.tasks.recursive_add.recursive_add_content" {
				t.Errorf("task name %v", task["name"])
			}
			rec := fmt.Sprint(task["reserved_resources_record"])
			if !strings.Contains(rec, "shared:prn:container.containerrepository:"+repoID(src)) ||
				!strings.Contains(rec, "prn:container.containerrepository:"+repoID(dst)) {
				t.Errorf("reserved_resources_record %v", rec)
			}
			e.expectVersion(task, "added: blob=3 manifest=1 tag=1 | removed: | present: blob=3 manifest=1 tag=1")
			// All the others, from a version.
			e.expectVersion(e.act(dst, "copy_tags", map[string]any{"source_repository_version": srcV1}),
				"added: blob=4 manifest=3 tag=2 | removed: | present: blob=7 manifest=4 tag=3")
			// An empty list of names copies nothing.
			e.expectNoVersion(e.act(dst, "copy_tags", map[string]any{"source_repository": src, "names": []string{}}))
		})

		t.Run("copy_manifests", func(t *testing.T) {
			dst := href(e.create(repositories, map[string]any{"name": "dst-manifests"}))
			e.expectVersion(e.act(dst, "copy_manifests", map[string]any{"source_repository": src, "digests": []string{actDigest("C")}}),
				"added: blob=2 manifest=1 | removed: | present: blob=2 manifest=1")
			e.expectVersion(e.act(dst, "copy_manifests", map[string]any{"source_repository_version": srcV1,
				"media_types": []string{models.MediaTypeOCIIndex}}),
				"added: blob=5 manifest=3 | removed: | present: blob=7 manifest=4")
			e.expectNoVersion(e.act(dst, "copy_manifests", map[string]any{"source_repository": src}))
		})

		t.Run("validation", func(t *testing.T) {
			dst := href(e.create(repositories, map[string]any{"name": "dst-bad"}))
			e.post(dst+"copy_tags/", map[string]any{}).bodyIs(t, 400,
				`{"non_field_errors": ["Either the 'repository' or 'repository_version' needs to be specified"]}`)
			e.post(dst+"copy_manifests/", map[string]any{"source_repository": src, "source_repository_version": srcV1}).bodyIs(t, 400,
				`{"non_field_errors": ["Either the 'repository' or 'repository_version' need to be specified but not both."]}`)
			e.post(dst+"copy_manifests/", map[string]any{"source_repository": src, "media_types": []string{"bogus"}}).bodyIs(t, 400,
				`{"media_types": ["\"bogus\" is not a valid choice."]}`)
			e.post(dst+"copy_tags/", map[string]any{"source_repository": repositories + "00000000-0000-0000-0000-000000000000/"}).bodyIs(t, 400,
				`{"source_repository": ["Invalid hyperlink - Object does not exist."]}`)
			e.post(dst+"copy_tags/", map[string]any{"source_repository_version": src + "versions/9/"}).bodyIs(t, 400,
				`{"source_repository_version": ["Invalid hyperlink - Object does not exist."]}`)
			e.post(dst+"copy_tags/", map[string]any{"source_repository": src, "names": "a"}).bodyIs(t, 400,
				`{"names": ["Expected a list of items but got type \"str\"."]}`)
			e.post(dst+"copy_tags/", map[string]any{"source_repository": src, "tags": []string{"a"}}).bodyIs(t, 400,
				`{"tags": ["Unexpected field"]}`)
			if n := e.versionCount(dst); n != 1 {
				t.Errorf("dst-bad has %d versions", n)
			}
		})
	})
}

func TestActionAddValidation(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		repo := href(e.create(repositories, map[string]any{"name": "val"}))
		unknown := api + "content/container/tags/00000000-0000-0000-0000-000000000000/"
		e.post(repo+"add/", map[string]any{"content_units": []string{unknown}}).bodyIs(t, 400,
			`["Could not find the following content units: ['`+unknown+`']"]`)
		e.post(repo+"remove/", map[string]any{"content_units": []string{c.tag("a"), unknown}}).bodyIs(t, 400,
			`["Could not find the following content units: ['`+unknown+`']"]`)
		e.post(repo+"add/", map[string]any{"content_units": []string{"not-a-uri"}}).bodyIs(t, 400,
			`["URI not valid: not-a-uri"]`)
		e.post(repo+"remove/", map[string]any{"content_units": []string{"*", c.tag("a")}}).bodyIs(t, 400,
			`{"non_field_errors": ["'*' should be the only item present in the ['*', '`+c.tag("a")+`']"]}`)
		e.post(repo+"add/", map[string]any{"foo": 1}).bodyIs(t, 400, `{"foo": ["Unexpected field"]}`)
		e.post(repo+"add/", map[string]any{"content_units": "x"}).bodyIs(t, 400,
			`{"content_units": ["Expected a list of items but got type \"str\"."]}`)
		e.post(repo+"add/", rawJSON(`{"content_units": null}`)).bodyIs(t, 400, `{"content_units": ["This field may not be null."]}`)
		e.post(repositories+"00000000-0000-0000-0000-000000000000/add/", map[string]any{}).bodyIs(t, 404,
			`{"detail": "No ContainerRepository matches the given query."}`)
		e.post(repositories+"nope/remove/", map[string]any{}).bodyIs(t, 404, `{"detail": "Not found."}`)
		if n := e.versionCount(repo); n != 1 {
			t.Errorf("%d versions after refused actions", n)
		}

		t.Run("two tags of one name fail the task", func(t *testing.T) {
			other, err := models.GetOrCreateTag(e.db, "a", c.manifests["B"].ID)
			if err != nil {
				t.Fatal(err)
			}
			task := e.waitTask(e.post(repo+"add/", map[string]any{"content_units": []string{c.tag("a"), other.Href()}}).taskHref(t))
			desc, _ := task["error"].(map[string]any)["description"].(string)
			if task["state"] != "failed" || !strings.Contains(desc, "[PLP0022]") {
				t.Errorf("task %v: %v", task["state"], task["error"])
			}
			if n := e.versionCount(repo); n != 1 {
				t.Errorf("%d versions after a failed add", n)
			}
		})
	})
}

// makePullThrough turns the repository at h into one of the pull-through cache's, holding the
// tag latest (as a pull would have recorded it).
func makePullThrough(t *testing.T, e *env, h string, c *actContent) {
	t.Helper()
	err := e.db.Transaction(func(tx *gorm.DB) error {
		var repo models.Repository
		if err := tx.Take(&repo, "id = ?", repoID(h)).Error; err != nil {
			return err
		}
		if _, err := models.RecursiveAdd(tx, &repo, []string{c.tags["latest"].ID}); err != nil {
			return err
		}
		return tx.Model(&repo).Update("pull_through", true).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestActionReadOnly(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		pt := href(e.create(repositories, map[string]any{"name": "cache/library/busybox"}))
		makePullThrough(t, e, pt, c)
		push := &models.Repository{Name: "pushed", PulpType: models.KindPushRepository.PulpType, PullThrough: true}
		if err := models.CreateRepository(e.db, push); err != nil {
			t.Fatal(err)
		}
		pushHref := push.Href()
		tasksBefore := len(e.get(taskList + "?limit=1000").results(t))
		readOnly := `{"detail": "Repository is read-only."}`
		for _, tc := range []struct {
			repo, action string
			body         any
		}{
			{pt, "add", map[string]any{"content_units": []string{c.tag("a")}}},
			{pt, "remove", map[string]any{"content_units": []string{"*"}}},
			{pt, "tag", map[string]any{"tag": "x", "digest": actDigest("I")}},
			{pt, "untag", map[string]any{"tag": "latest"}},
			{pt, "copy_tags", map[string]any{"source_repository": pt}},
			{pt, "copy_manifests", map[string]any{"source_repository": pt}},
			// The refusal comes before the body is looked at.
			{pt, "add", map[string]any{"foo": 1}},
			{pushHref, "tag", map[string]any{"tag": "x", "digest": actDigest("I")}},
			{pushHref, "untag", map[string]any{"tag": "latest"}},
			{pushHref, "remove_image", map[string]any{"digest": actDigest("I")}},
		} {
			e.post(tc.repo+tc.action+"/", tc.body).bodyIs(t, 400, readOnly)
		}
		e.patch(pt, map[string]any{"description": "x"}).bodyIs(t, 400, readOnly)
		if n := len(e.get(taskList + "?limit=1000").results(t)); n != tasksBefore {
			t.Errorf("%d tasks after refused actions, want %d", n, tasksBefore)
		}
		if n := e.versionCount(pt); n != 2 {
			t.Errorf("pull-through repository has %d versions, want 2", n)
		}
		if got := summaryOf(t, e.get(pt+"versions/1/").obj(t)); got != "added: blob=5 manifest=3 tag=1 | removed: | present: blob=5 manifest=3 tag=1" {
			t.Errorf("pull-through repository changed: %s", got)
		}

		t.Run("copy from it", func(t *testing.T) {
			dst := href(e.create(repositories, map[string]any{"name": "mine"}))
			e.expectVersion(e.act(dst, "copy_tags", map[string]any{"source_repository": pt}),
				"added: blob=5 manifest=3 tag=1 | removed: | present: blob=5 manifest=3 tag=1")
			e.expectNoVersion(e.act(dst, "copy_manifests", map[string]any{"source_repository_version": pt + "versions/1/", "digests": []string{actDigest("A")}}))
		})
	})
}

func TestActionPushRepository(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		c := newActContent(t, e.db)
		push := &models.Repository{Name: "pushed", PulpType: models.KindPushRepository.PulpType}
		if err := models.CreateRepository(e.db, push); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Transaction(func(tx *gorm.DB) error {
			_, err := models.RecursiveAdd(tx, push, []string{c.tags["latest"].ID, c.tags["a"].ID, c.tags["v1"].ID})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		h := push.Href()
		e.expectVersion(e.act(h, "tag", map[string]any{"tag": "b", "digest": actDigest("B")}),
			"added: tag=1 | removed: | present: blob=7 manifest=4 tag=4")
		e.expectVersion(e.act(h, "untag", map[string]any{"tag": "b"}),
			"added: | removed: tag=1 | present: blob=7 manifest=4 tag=3")
		// A goes with its tag a; I still lists it, so A stays.
		task := e.act(h, "remove_image", map[string]any{"digest": actDigest("A")})
		if task["name"] != "pulp_container.app.tasks.recursive_remove.recursive_remove_content" {
			t.Errorf("task name %v", task["name"])
		}
		e.expectVersion(task, "added: | removed: tag=1 | present: blob=7 manifest=4 tag=2")
		// C goes with its tag v1 and its blobs.
		e.expectVersion(e.act(h, "remove_image", map[string]any{"digest": actDigest("C")}),
			"added: | removed: blob=2 manifest=1 tag=1 | present: blob=5 manifest=3 tag=1")
		e.post(h+"remove_image/", map[string]any{"digest": actDigest("C")}).bodyIs(t, 400, fmt.Sprintf(
			`{"non_field_errors": ["A manifest with the digest '%s' does not exist in the latest repository version '<Repository: pushed; Version: 5>'"]}`, actDigest("C")))
		e.post(h+"remove_image/", map[string]any{}).bodyIs(t, 400, `{"digest": ["This field is required."]}`)
	})
}
