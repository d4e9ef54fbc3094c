package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

const (
	blobList     = api + "content/container/blobs/"
	manifestList = api + "content/container/manifests/"
	tagList      = api + "content/container/tags/"
)

// sortedHrefs returns the pulp_hrefs of a list response, sorted.
func (r *resp) sortedHrefs(t *testing.T) []string {
	t.Helper()
	hs := hrefsOf(r.expect(t, http.StatusOK).results(t))
	sort.Strings(hs)
	return hs
}

func sorted(hs ...string) []string {
	out := append([]string{}, hs...)
	sort.Strings(out)
	return out
}

func TestContentLists(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		db := e.db
		mustBlob := func(s string) *models.Blob {
			b, err := models.GetOrCreateBlob(db, &models.Blob{Digest: sha(s), Size: int64(len(s))})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		cfg, layer, other := mustBlob("config"), mustBlob("layer"), mustBlob("other")
		m1, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: sha("m1"), MediaType: models.MediaTypeOCIManifest,
			SchemaVersion: 2, ConfigBlobID: &cfg.ID}, []string{layer.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: sha("m2"), MediaType: models.MediaTypeDockerManifest,
			SchemaVersion: 2, ConfigBlobID: &cfg.ID}, []string{other.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		latest, err := models.GetOrCreateTag(db, "latest", m1.ID)
		if err != nil {
			t.Fatal(err)
		}
		v1tag, err := models.GetOrCreateTag(db, "v1", m2.ID)
		if err != nil {
			t.Fatal(err)
		}
		ref := func(k models.Kind, id string) models.ContentRef { return models.ContentRef{Type: k.PulpType, ID: id} }

		repoObj := e.create(repositories, map[string]any{"name": "busybox"})
		rh := href(repoObj)
		change := func(add, remove []models.ContentRef) {
			t.Helper()
			newVersion(t, db, rh, add, remove)
		}
		// Version 1: m1 with its blobs and tag; version 2: m2 and v1 added, latest removed.
		change([]models.ContentRef{ref(models.KindBlob, cfg.ID), ref(models.KindBlob, layer.ID),
			ref(models.KindManifest, m1.ID), ref(models.KindTag, latest.ID)}, nil)
		change([]models.ContentRef{ref(models.KindBlob, other.ID), ref(models.KindManifest, m2.ID), ref(models.KindTag, v1tag.ID)},
			[]models.ContentRef{ref(models.KindTag, latest.ID)})
		v0, v1, v2 := rh+"versions/0/", rh+"versions/1/", rh+"versions/2/"

		cases := []struct {
			path string
			want []string
		}{
			{blobList, sorted(cfg.Href(), layer.Href(), other.Href())},
			{blobList + "?digest=" + cfg.Digest, sorted(cfg.Href())},
			{blobList + "?digest=sha256:0000", nil},
			{blobList + "?digest__in=" + cfg.Digest + "," + other.Digest, sorted(cfg.Href(), other.Href())},
			{blobList + "?repository_version=" + v0, nil},
			{blobList + "?repository_version=" + v1, sorted(cfg.Href(), layer.Href())},
			{blobList + "?repository_version=" + v2, sorted(cfg.Href(), layer.Href(), other.Href())},
			{blobList + "?repository_version=" + rh, sorted(cfg.Href(), layer.Href(), other.Href())}, // latest
			{blobList + "?repository_version=" + url.QueryEscape(repoObj["prn"].(string)), sorted(cfg.Href(), layer.Href(), other.Href())},
			{blobList + "?repository_version_added=" + v2, sorted(other.Href())},
			{manifestList, sorted(m1.Href(), m2.Href())},
			{manifestList + "?digest=" + m2.Digest, sorted(m2.Href())},
			{manifestList + "?digest__in=" + m1.Digest + "," + m2.Digest, sorted(m1.Href(), m2.Href())},
			{manifestList + "?media_type=" + url.QueryEscape(models.MediaTypeOCIManifest), sorted(m1.Href())},
			{manifestList + "?repository_version=" + v1, sorted(m1.Href())},
			{manifestList + "?repository_version=" + v2, sorted(m1.Href(), m2.Href())},
			{tagList, sorted(latest.Href(), v1tag.Href())},
			{tagList + "?name=latest", sorted(latest.Href())},
			{tagList + "?name__in=latest,v1", sorted(latest.Href(), v1tag.Href())},
			{tagList + "?digest=" + m2.Digest, sorted(v1tag.Href())},
			{tagList + "?repository_version=" + v1, sorted(latest.Href())},
			{tagList + "?repository_version=" + v2, sorted(v1tag.Href())},
			{tagList + "?repository_version_added=" + v2, sorted(v1tag.Href())},
			{tagList + "?repository_version_removed=" + v2, sorted(latest.Href())},
			{tagList + "?name=latest&repository_version=" + v2, nil},
		}
		for _, c := range cases {
			t.Run(c.path, func(t *testing.T) {
				got := e.get(c.path).sortedHrefs(t)
				if len(got) != 0 || len(c.want) != 0 {
					if !reflect.DeepEqual(got, c.want) {
						t.Errorf("got %v, want %v", got, c.want)
					}
				}
			})
		}
		t.Run("unresolvable version", func(t *testing.T) {
			e.get(blobList+"?repository_version=/pulp/api/v3/nope/").bodyIs(t, http.StatusBadRequest,
				`["URI not valid: /pulp/api/v3/nope/"]`)
			e.get(tagList+"?foo=1").bodyIs(t, http.StatusBadRequest, `{"errors": ["Invalid Filter: 'foo'"]}`)
		})

		t.Run("objects", func(t *testing.T) {
			b := e.get(cfg.Href()).expect(t, http.StatusOK).obj(t)
			if b["digest"] != cfg.Digest || b["prn"] != "prn:container.blob:"+cfg.ID || b["artifact"] != nil {
				t.Errorf("blob %v", b)
			}
			m := e.get(m1.Href()).expect(t, http.StatusOK).obj(t)
			if m["digest"] != m1.Digest || m["config_blob"] != cfg.Href() || m["media_type"] != models.MediaTypeOCIManifest ||
				m["schema_version"] != 2.0 {
				t.Errorf("manifest %v", m)
			}
			jsonEq(t, mustJSON(t, m["blobs"]), `["`+layer.Href()+`"]`)
			jsonEq(t, mustJSON(t, m["listed_manifests"]), `[]`)
			tg := e.get(latest.Href()).expect(t, http.StatusOK).obj(t)
			if tg["name"] != "latest" || tg["tagged_manifest"] != m1.Href() {
				t.Errorf("tag %v", tg)
			}
			e.get(blobList+"00000000-0000-0000-0000-000000000000/").bodyIs(t, http.StatusNotFound, `{"detail": "No Blob matches the given query."}`)
			e.get(tagList+"x/").bodyIs(t, http.StatusNotFound, `{"detail": "Not found."}`)
		})

		t.Run("content labels", func(t *testing.T) {
			// Content labels endpoints are not served; labels come from the models here.
			if err := db.Model(&models.Tag{}).Where("id = ?", latest.ID).Update("pulp_labels", models.Labels{"k": "v"}).Error; err != nil {
				t.Fatal(err)
			}
			got := e.get(tagList + "?pulp_label_select=k").sortedHrefs(t)
			if !reflect.DeepEqual(got, []string{latest.Href()}) {
				t.Errorf("label select %v", got)
			}
		})

		t.Run("versions", func(t *testing.T) {
			if got := e.get(rh).obj(t)["latest_version_href"]; got != v2 {
				t.Errorf("latest_version_href %v", got)
			}
			var nums []float64
			for _, v := range e.get(rh + "versions/").results(t) {
				nums = append(nums, v["number"].(float64))
			}
			if !reflect.DeepEqual(nums, []float64{2, 1, 0}) {
				t.Errorf("version numbers %v, want [2 1 0]", nums)
			}
			v := e.get(v2).expect(t, http.StatusOK).obj(t)
			sum := func(param string, counts map[string]int) string {
				lists := map[string]string{"container.blob": blobList, "container.manifest": manifestList, "container.tag": tagList}
				out := "{"
				for _, typ := range []string{"container.blob", "container.manifest", "container.tag"} {
					if n, ok := counts[typ]; ok {
						if out != "{" {
							out += ", "
						}
						out += `"` + typ + `": {"count": ` + string(rune('0'+n)) + `, "href": "` + lists[typ] + "?" + param + "=" + v2 + `"}`
					}
				}
				return out + "}"
			}
			jsonEq(t, mustJSON(t, v["content_summary"]), `{"added": `+sum("repository_version_added",
				map[string]int{"container.blob": 1, "container.manifest": 1, "container.tag": 1})+
				`, "removed": `+sum("repository_version_removed", map[string]int{"container.tag": 1})+
				`, "present": `+sum("repository_version", map[string]int{"container.blob": 3, "container.manifest": 2, "container.tag": 1})+`}`)
			if v["base_version"] != v1 {
				t.Errorf("base_version %v", v["base_version"])
			}
			got := e.get(rh + "versions/?content=" + url.QueryEscape(latest.Href())).results(t)
			if len(got) != 1 || got[0]["number"] != 1.0 {
				t.Errorf("versions with the latest tag: %v", got)
			}

			task := e.waitTaskOK(e.del(v1).taskHref(t))
			if task["name"] != "pulpcore.app.tasks.repository.delete_version" {
				t.Errorf("task name %v", task["name"])
			}
			e.get(v1).bodyIs(t, http.StatusNotFound, `{"detail": "No RepositoryVersion matches the given query."}`)
			got2 := e.get(blobList + "?repository_version=" + v2).sortedHrefs(t)
			if !reflect.DeepEqual(got2, sorted(cfg.Href(), layer.Href(), other.Href())) {
				t.Errorf("version 2 after deleting 1: %v", got2)
			}
			if got := e.get(tagList + "?repository_version=" + v2).sortedHrefs(t); !reflect.DeepEqual(got, []string{v1tag.Href()}) {
				t.Errorf("tags of version 2 after deleting 1: %v", got)
			}
		})
	})
}

func TestNamespaces(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		r := e.post(namespaces, map[string]any{"name": "myns"}).expect(t, http.StatusCreated)
		ns := r.obj(t)
		h := href(ns)
		if r.Header.Get("Location") != h || ns["prn"] != "prn:container.containernamespace:"+idOf(h) || ns["name"] != "myns" {
			t.Errorf("namespace %s, Location %q", r.Body, r.Header.Get("Location"))
		}
		jsonEq(t, mustJSON(t, ns["pulp_labels"]), `{}`)
		if len(ns) != 6 {
			t.Errorf("namespace keys: %v", ns)
		}
		e.post(namespaces, map[string]any{"name": "myns"}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field must be unique."]}`)
		e.post(namespaces, map[string]any{}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field is required."]}`)
		e.post(namespaces, map[string]any{"name": "other"}).expect(t, http.StatusCreated)
		if got := e.get(namespaces + "?ordering=name").names(t); !reflect.DeepEqual(got, []string{"myns", "other"}) {
			t.Errorf("list %v", got)
		}
		if got := e.get(namespaces + "?name=other").names(t); !reflect.DeepEqual(got, []string{"other"}) {
			t.Errorf("name filter %v", got)
		}
		e.patch(h, map[string]any{"name": "x"}).expect(t, http.StatusMethodNotAllowed)

		// Deleting a namespace deletes its distributions (and their lone repositories).
		repo := e.create(repositories, map[string]any{"name": "app"})
		dist := e.createAsync(distributions, map[string]any{"name": "app", "base_path": "myns/app", "repository": href(repo)})
		if dist["namespace"] != h {
			t.Fatalf("distribution namespace %v, want %s", dist["namespace"], h)
		}
		task := e.waitTaskOK(e.del(h).taskHref(t))
		if task["name"] != "pulpcore.app.tasks.base.general_multi_delete" {
			t.Errorf("task name %v", task["name"])
		}
		e.get(h).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerNamespace matches the given query."}`)
		e.get(href(dist)).expect(t, http.StatusNotFound)
		e.get(href(repo)).expect(t, http.StatusNotFound)
		if got := e.get(namespaces).names(t); !reflect.DeepEqual(got, []string{"other"}) {
			t.Errorf("after delete %v", got)
		}
	})
}

// newVersion makes a new version of the container repository at rh, adding and removing refs.
func newVersion(t *testing.T, db *gorm.DB, rh string, add, remove []models.ContentRef) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		repo, err := models.GetRepository(tx, models.KindContainerRepository, idOf(rh))
		if err != nil {
			return err
		}
		_, err = models.NewVersion(tx, repo, add, remove)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
