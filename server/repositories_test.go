package server_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestRepository(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(remotes, map[string]any{"name": "busybox", "url": "https://x", "upstream_name": "library/busybox"})
		r := e.post(repositories, map[string]any{"name": "busybox", "remote": href(rem)}).expect(t, http.StatusCreated)
		repo := r.obj(t)
		h := href(repo)
		if r.Header.Get("Location") != h || !strings.HasPrefix(h, repositories) {
			t.Errorf("pulp_href %q, Location %q", h, r.Header.Get("Location"))
		}
		want := map[string]any{"versions_href": h + "versions/", "latest_version_href": h + "versions/0/",
			"name": "busybox", "description": nil, "retain_repo_versions": nil, "retain_checkpoints": nil,
			"remote": href(rem), "manifest_signing_service": nil}
		for k, v := range want {
			if repo[k] != v {
				t.Errorf("%s = %#v, want %#v", k, repo[k], v)
			}
		}

		t.Run("versions", func(t *testing.T) {
			vs := e.get(h+"versions/").expect(t, http.StatusOK).results(t)
			if len(vs) != 1 {
				t.Fatalf("%d versions, want 1", len(vs))
			}
			v := vs[0]
			if v["pulp_href"] != h+"versions/0/" || v["number"] != 0.0 || v["repository"] != h || v["base_version"] != nil {
				t.Errorf("version 0: %v", v)
			}
			jsonEq(t, mustJSON(t, v["content_summary"]), `{"added": {}, "removed": {}, "present": {}}`)
			prn, _ := v["prn"].(string)
			if !strings.HasPrefix(prn, "prn:core.repositoryversion:") || v["vuln_report"] != "/pulp/api/v3/vuln_report/?repo_versions="+prn {
				t.Errorf("prn %v, vuln_report %v", v["prn"], v["vuln_report"])
			}
			got := e.get(h+"versions/0/").expect(t, http.StatusOK)
			jsonEq(t, got.Body, string(mustJSON(t, v)))
			e.get(h+"versions/1/").expect(t, http.StatusNotFound)
		})

		t.Run("description set and cleared", func(t *testing.T) {
			task := e.waitTaskOK(e.patch(h, map[string]any{"description": "a repo"}).taskHref(t))
			if task["result"].(map[string]any)["description"] != "a repo" {
				t.Errorf("result %v", task["result"])
			}
			e.patch(h, map[string]any{"description": "a repo"}).expect(t, http.StatusOK)
			task = e.waitTaskOK(e.patch(h, rawJSON(`{"description": null}`)).taskHref(t))
			res := task["result"].(map[string]any)
			if v, ok := res["description"]; !ok || v != nil {
				t.Errorf("result description %#v", res["description"])
			}
			got := e.get(h).obj(t)
			if v, ok := got["description"]; !ok || v != nil {
				t.Errorf("description %#v after PATCH null", got["description"])
			}
		})

		t.Run("validation", func(t *testing.T) {
			e.post(repositories, map[string]any{"name": "busybox"}).bodyIs(t, 400, `{"name": ["This field must be unique."]}`)
			e.patch(h, map[string]any{"retain_repo_versions": 0}).bodyIs(t, 400,
				`{"retain_repo_versions": ["Ensure this value is greater than or equal to 1."]}`)
			e.post(repositories, map[string]any{"name": "r2", "remote": remotes + "00000000-0000-0000-0000-000000000000/"}).
				bodyIs(t, 400, `{"remote": ["Invalid hyperlink - Object does not exist."]}`)
			e.post(repositories, map[string]any{"name": "r2", "remote": "/pulp/api/v3/foo/"}).
				bodyIs(t, 400, `{"remote": ["Invalid hyperlink - No URL match."]}`)
		})

		t.Run("delete", func(t *testing.T) {
			e.waitTaskOK(e.del(h).taskHref(t))
			e.get(h).bodyIs(t, 404, `{"detail": "No ContainerRepository matches the given query."}`)
			// The remote stays.
			e.get(href(rem)).expect(t, http.StatusOK)
		})
	})
}
