package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

const domainID = models.DefaultDomainID

func idOf(h string) string {
	parts := strings.Split(strings.TrimSuffix(h, "/"), "/")
	return parts[len(parts)-1]
}

func TestDistributionCreate(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		repo := e.create(repositories, map[string]any{"name": "busybox"})
		taskHref := e.post(distributions, map[string]any{"name": "busybox", "base_path": "test/busybox",
			"repository": href(repo)}).taskHref(t)
		task := e.waitTaskOK(taskHref)
		if task["name"] != "pulpcore.app.tasks.base.general_create" {
			t.Errorf("task name %v", task["name"])
		}
		created, _ := task["created_resources"].([]any)
		if len(created) != 1 || !strings.HasPrefix(created[0].(string), distributions) {
			t.Fatalf("created_resources %v", task["created_resources"])
		}
		dh := created[0].(string)
		jsonEq(t, mustJSON(t, task["created_resource_prns"]), `["prn:container.containerdistribution:`+idOf(dh)+`"]`)
		jsonEq(t, mustJSON(t, task["reserved_resources_record"]), `["pdrn:`+domainID+`:distribution.base_path", "shared:pdrn:`+
			domainID+`:distributions", "shared:prn:core.domain:`+domainID+`"]`)
		res := task["result"].(map[string]any)
		if res["pulp_href"] != dh || res["registry_path"] != "test/busybox" || res["repository"] != href(repo) {
			t.Errorf("result %v", res)
		}

		d := e.get(dh).expect(t, http.StatusOK).obj(t)
		if d["registry_path"] != e.host+"/test/busybox" {
			t.Errorf("registry_path %v, want %s/test/busybox", d["registry_path"], e.host)
		}
		if got := e.get(dh, withHost("registry.example:5000")).obj(t)["registry_path"]; got != "registry.example:5000/test/busybox" {
			t.Errorf("registry_path with Host registry.example:5000: %v", got)
		}
		for k, v := range map[string]any{"name": "busybox", "base_path": "test/busybox", "repository": href(repo),
			"repository_version": nil, "remote": nil, "hidden": false, "private": false, "description": nil} {
			if d[k] != v {
				t.Errorf("%s = %#v, want %#v", k, d[k], v)
			}
		}
		nsHref, _ := d["namespace"].(string)
		if !strings.HasPrefix(nsHref, namespaces) {
			t.Fatalf("namespace %v", d["namespace"])
		}
		if ns := e.get(nsHref).expect(t, http.StatusOK).obj(t); ns["name"] != "test" {
			t.Errorf("namespace %v", ns)
		}
		if n := e.get(namespaces + "?name=test").results(t); len(n) != 1 {
			t.Errorf("%d namespaces named test", len(n))
		}

		t.Run("a second distribution reuses the namespace", func(t *testing.T) {
			d2 := e.createAsync(distributions, map[string]any{"name": "second", "base_path": "test/second"})
			if d2["namespace"] != nsHref || d2["repository"] != nil {
				t.Errorf("second distribution %v", d2)
			}
		})
		t.Run("container distributions skip the overlap check", func(t *testing.T) {
			e.createAsync(distributions, map[string]any{"name": "overlap", "base_path": "test"})
		})
		t.Run("PRN reference", func(t *testing.T) {
			d3 := e.createAsync(distributions, map[string]any{"name": "prn-dist", "base_path": "prn/dist", "repository": repo["prn"]})
			if d3["repository"] != href(repo) {
				t.Errorf("repository %v", d3["repository"])
			}
		})
		t.Run("pinned version", func(t *testing.T) {
			d4 := e.createAsync(distributions, map[string]any{"name": "pinned", "base_path": "pinned", "repository_version": href(repo) + "versions/0/"})
			if d4["repository_version"] != href(repo)+"versions/0/" || d4["repository"] != nil {
				t.Errorf("pinned %v", d4)
			}
			// A served version cannot be deleted.
			e.del(href(repo)+"versions/0/").expect(t, http.StatusBadRequest)
		})
		t.Run("update", func(t *testing.T) {
			e.patch(dh, map[string]any{"base_path": "test/busybox"}).expect(t, http.StatusOK)
			task := e.waitTaskOK(e.patch(dh, map[string]any{"base_path": "other/busybox"}).taskHref(t))
			if task["result"].(map[string]any)["registry_path"] != "other/busybox" {
				t.Errorf("result %v", task["result"])
			}
			got := e.get(dh).obj(t)
			ns := e.get(got["namespace"].(string)).obj(t)
			if got["base_path"] != "other/busybox" || ns["name"] != "other" {
				t.Errorf("after update: %v in namespace %v", got, ns)
			}
		})
	})
}

func TestDistributionValidation(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		repo := e.create(repositories, map[string]any{"name": "busybox"})
		e.createAsync(distributions, map[string]any{"name": "busybox", "base_path": "test/busybox", "repository": href(repo)})
		unknownRepo := repositories + "00000000-0000-0000-0000-000000000000/"
		cases := []struct {
			name string
			body map[string]any
			want string
		}{
			{"bad href and bad base_path", map[string]any{"name": "bad", "base_path": "bad path!", "repository": "/pulp/api/v3/foo/"},
				`{"repository": ["Invalid hyperlink - No URL match."], "base_path": ["The provided base path contains forbidden characters."]}`},
			{"bad base_path", map[string]any{"name": "bad", "base_path": "Upper/case"},
				`{"base_path": ["The provided base path contains forbidden characters."]}`},
			{"unknown href and taken name and base_path", map[string]any{"name": "busybox", "base_path": "test/busybox", "repository": unknownRepo},
				`{"name": ["This field must be unique."], "repository": ["Invalid hyperlink - Object does not exist."], "base_path": ["This field must be unique."]}`},
			{"wrong kind of href", map[string]any{"name": "k", "base_path": "k", "repository": href(e.create(remotes,
				map[string]any{"name": "rem", "url": "https://x", "upstream_name": "u"}))},
				`{"repository": ["Invalid hyperlink - Incorrect URL match."]}`},
			{"repository and repository_version", map[string]any{"name": "both", "base_path": "both", "repository": href(repo),
				"repository_version": href(repo) + "versions/0/"},
				`{"non_field_errors": ["Only one of the attributes 'repository' and 'repository_version' may be used simultaneously."]}`},
			{"missing fields", map[string]any{}, `{"name": ["This field is required."], "base_path": ["This field is required."]}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.post(distributions, c.body).bodyIs(t, http.StatusBadRequest, c.want)
			})
		}
		if n := len(e.get(distributions).results(t)); n != 1 {
			t.Errorf("%d distributions after refused creates, want 1", n)
		}
		if n := len(e.get(taskList + "?name=pulpcore.app.tasks.base.general_create").results(t)); n != 1 {
			t.Errorf("%d create tasks, want 1", n)
		}
	})
}

func TestPullThroughDistribution(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		remote := e.create(ptRemotes, map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"})
		e.createAsync(distributions, map[string]any{"name": "prn-dist", "base_path": "prn/dist"})
		pt := e.createAsync(ptDistribution, map[string]any{"name": "docker-cache", "base_path": "docker-cache", "remote": href(remote)})
		if pt["remote"] != href(remote) || pt["base_path"] != "docker-cache" {
			t.Errorf("pull-through distribution %v", pt)
		}
		if _, ok := pt["registry_path"]; ok {
			t.Errorf("pull-through distribution has registry_path: %v", pt)
		}
		jsonEq(t, mustJSON(t, pt["distributions"]), `[]`)

		t.Run("overlap", func(t *testing.T) {
			for _, bp := range []string{"prn", "prn/dist/sub"} {
				e.post(ptDistribution, map[string]any{"name": "pt-overlap", "base_path": bp, "remote": href(remote)}).
					bodyIs(t, http.StatusBadRequest, `{"base_path": {"base_path": "Overlaps with existing distribution 'prn-dist'"}}`)
			}
			e.post(ptDistribution, map[string]any{"name": "pt-overlap", "base_path": "docker-cache/x", "remote": href(remote)}).
				bodyIs(t, http.StatusBadRequest, `{"base_path": {"base_path": "Overlaps with existing distribution 'docker-cache'"}}`)
			// Together with the other fields' errors.
			e.post(ptDistribution, map[string]any{"name": "docker-cache", "base_path": "prn"}).
				bodyIs(t, http.StatusBadRequest, `{"name": ["This field must be unique."], "remote": ["This field is required."], `+
					`"base_path": {"base_path": "Overlaps with existing distribution 'prn-dist'"}}`)
			// An equal base path fails the uniqueness check first, as in DRF.
			e.post(ptDistribution, map[string]any{"name": "pt-overlap", "base_path": "prn/dist", "remote": href(remote)}).
				bodyIs(t, http.StatusBadRequest, `{"base_path": ["This field must be unique."]}`)
		})
		t.Run("no lowercase rule", func(t *testing.T) {
			e.createAsync(ptDistribution, map[string]any{"name": "pt-upper", "base_path": "Docker_Cache/x", "remote": href(remote)})
		})
		t.Run("invalid", func(t *testing.T) {
			e.post(ptDistribution, map[string]any{"name": "n", "base_path": "n"}).
				bodyIs(t, http.StatusBadRequest, `{"remote": ["This field is required."]}`)
			for _, bp := range []string{"/abs", "a//b", "a/../b", "trailing/"} {
				m := e.post(ptDistribution, map[string]any{"name": "n", "base_path": bp, "remote": href(remote)}).
					expect(t, http.StatusBadRequest).obj(t)
				if _, ok := m["base_path"]; !ok || len(m) != 1 {
					t.Errorf("base_path %q: %v", bp, m)
				}
			}
		})

		t.Run("delete takes the children", func(t *testing.T) {
			childRepo := e.create(repositories, map[string]any{"name": "docker-cache/library/busybox", "retain_repo_versions": 1})
			ptID, repoID, now := idOf(href(pt)), idOf(href(childRepo)), models.Now()
			child := &models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType,
				PulpCreated: now, PulpLastUpdated: now, Name: "docker-cache/library/busybox",
				BasePath: "docker-cache/library/busybox", RepositoryID: &repoID, PullThroughID: &ptID, PulpLabels: models.Labels{}}
			if err := e.db.Create(child).Error; err != nil {
				t.Fatal(err)
			}
			childHref := distributions + child.ID + "/"
			jsonEq(t, mustJSON(t, e.get(href(pt)).obj(t)["distributions"]), `["`+childHref+`"]`)
			e.get(childHref).expect(t, http.StatusOK)

			task := e.waitTaskOK(e.del(href(pt)).taskHref(t))
			if task["name"] != "pulpcore.app.tasks.base.ageneral_delete" {
				t.Errorf("task name %v", task["name"])
			}
			e.get(href(pt)).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerPullThroughDistribution matches the given query."}`)
			e.get(childHref).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerDistribution matches the given query."}`)
			e.get(href(childRepo)).expect(t, http.StatusOK)
			e.get(href(remote)).expect(t, http.StatusOK)
		})
	})
}

func TestContainerDistributionDelete(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		lone := e.create(repositories, map[string]any{"name": "lone"})
		shared := e.create(repositories, map[string]any{"name": "shared"})
		d1 := e.createAsync(distributions, map[string]any{"name": "lone", "base_path": "lone", "repository": href(lone)})
		d2 := e.createAsync(distributions, map[string]any{"name": "s1", "base_path": "s1", "repository": href(shared)})
		d3 := e.createAsync(distributions, map[string]any{"name": "s2", "base_path": "s2", "repository": href(shared)})

		task := e.waitTaskOK(e.del(href(d1)).taskHref(t))
		if task["name"] != "pulpcore.app.tasks.base.general_multi_delete" {
			t.Errorf("task name %v", task["name"])
		}
		e.get(href(d1)).expect(t, http.StatusNotFound)
		e.get(href(lone)).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerRepository matches the given query."}`)

		e.waitTaskOK(e.del(href(d2)).taskHref(t))
		e.get(href(shared)).expect(t, http.StatusOK) // still served by s2
		e.waitTaskOK(e.del(href(d3)).taskHref(t))
		e.get(href(shared)).expect(t, http.StatusNotFound)
	})
}

// TestPullThroughBasePathIsReserved checks that below a pull-through distribution's base path
// only the cache makes distributions: the API refuses a container distribution there, on
// create and on update, while paths beside it and nested ordinary paths stay allowed, and the
// children and the pull-through distribution itself stay editable.
func TestPullThroughBasePathIsReserved(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		remote := e.create(ptRemotes, map[string]any{"name": "pub-remote", "url": "https://registry-1.docker.io"})
		pt := e.createAsync(ptDistribution, map[string]any{"name": "pub", "base_path": "pub", "remote": href(remote)})
		const below = `{"base_path": ["Base path is below the pull-through distribution 'pub': only its cache creates distributions there."]}`
		for _, bp := range []string{"pub/library/busybox2", "pub/x"} {
			e.post(distributions, map[string]any{"name": "shadow", "base_path": bp}).bodyIs(t, http.StatusBadRequest, below)
		}
		// Beside the pull-through path, and nested ordinary paths, as in Pulp.
		e.createAsync(distributions, map[string]any{"name": "pubx", "base_path": "pubx/library/busybox"})
		team := e.createAsync(distributions, map[string]any{"name": "team", "base_path": "team"})
		e.createAsync(distributions, map[string]any{"name": "team-app", "base_path": "team/app"})

		t.Run("update", func(t *testing.T) {
			e.patch(href(team), map[string]any{"base_path": "pub/team"}).bodyIs(t, http.StatusBadRequest, below)
			e.put(href(team), map[string]any{"name": "team", "base_path": "pub/team"}).bodyIs(t, http.StatusBadRequest, below)
			e.get(href(team)).expect(t, http.StatusOK)
			if bp := e.get(href(team)).obj(t)["base_path"]; bp != "team" {
				t.Errorf("base_path %v after refused updates", bp)
			}
		})
		t.Run("a pull-through distribution over an ordinary one", func(t *testing.T) {
			e.post(ptDistribution, map[string]any{"name": "pt-team", "base_path": "team", "remote": href(remote)}).
				bodyIs(t, http.StatusBadRequest, `{"base_path": ["This field must be unique."]}`)
			e.post(ptDistribution, map[string]any{"name": "pt-pubx", "base_path": "pubx", "remote": href(remote)}).
				bodyIs(t, http.StatusBadRequest, `{"base_path": {"base_path": "Overlaps with existing distribution 'pubx'"}}`)
		})
		t.Run("children and their parent stay editable", func(t *testing.T) {
			ptID, now := idOf(href(pt)), models.Now()
			child := &models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType,
				PulpCreated: now, PulpLastUpdated: now, Name: "pub/library/debian", BasePath: "pub/library/debian",
				PullThroughID: &ptID, PulpLabels: models.Labels{}}
			if err := e.db.Create(child).Error; err != nil {
				t.Fatal(err)
			}
			childHref := distributions + child.ID + "/"
			e.waitTaskOK(e.put(childHref, map[string]any{"name": "pub/library/debian", "base_path": "pub/library/debian",
				"description": "cached"}).taskHref(t))
			e.patch(childHref, map[string]any{"base_path": "pub/library/other"}).bodyIs(t, http.StatusBadRequest, below)
			// The pull-through distribution's own children do not overlap it.
			e.waitTaskOK(e.put(href(pt), map[string]any{"name": "pub", "base_path": "pub", "remote": href(remote),
				"description": "docker hub"}).taskHref(t))
		})
		names := e.get(distributions + "?limit=100").names(t)
		for _, n := range names {
			if n == "shadow" {
				t.Errorf("a refused distribution exists: %v", names)
			}
		}
	})
}
