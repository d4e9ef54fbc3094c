package server_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParamErrorsAsPulp: parameters the binder cannot read are answered as Pulp does.
func TestParamErrorsAsPulp(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		repo := e.create(repositories, map[string]any{"name": "params"})
		href := repo["pulp_href"].(string)
		cases := []struct {
			path   string
			status int
			body   string
		}{
			{href + "versions/abc/", 404, `{"detail":"Not found."}`},
			{href + "versions/?number=zero", 400, `{"number":["Enter a number."]}`},
			{href + "versions/?pulp_created__gte=yesterday", 400, `{"pulp_created__gte":["Enter a valid date/time."]}`},
			{taskList + "?started_at__gte=yesterday", 400, `{"started_at__gte":["Enter a valid date/time."]}`},
			{api + "content/container/manifests/?is_flatpak=perhaps", 200, ""},
			{api + "workers/?online=perhaps", 200, ""},
			{api + "workers/?online=TRUE", 200, ""},
			// Choices from the spec's enums.
			{api + "content/container/manifests/?media_type=text/plain", 400,
				`{"media_type":["Select a valid choice. text/plain is not one of the available choices."]}`},
			{api + "content/container/tags/?media_type=application/vnd.oci.image.index.v1%2Bjson", 200, ""},
			{api + "content/?ordering=colour", 400, `{"ordering":["Select a valid choice. colour is not one of the available choices."]}`},
			{api + "content/?pulp_type__in=container.blob,colour.blue", 400,
				`{"pulp_type__in":["Select a valid choice. colour.blue is not one of the available choices."]}`},
			// Hrefs in filters resolved as Pulp's get_resource does.
			{api + "content/container/blobs/?repository_version=abc", 400, `["URI not valid: abc"]`},
			{api + "content/container/blobs/?repository_version=" + href + "versions/3/", 400,
				`["URI ` + href + `versions/3/ not found for repositoryversion."]`},
			{href + "versions/?content=abc", 400, `["URI not valid: abc"]`},
			{href + "versions/?content=" + api + "content/container/tags/00000000-0000-0000-0000-000000000000/", 400,
				`["Could not find the following content units: ['` + api + `content/container/tags/00000000-0000-0000-0000-000000000000/']"]`},
			{taskList + "?created_resources=abc", 400, `["URI not valid: abc"]`},
			{taskList + "?created_resources=" + distributions + "00000000-0000-0000-0000-000000000000/", 400,
				`["URI ` + distributions + `00000000-0000-0000-0000-000000000000/ not found for containerdistribution."]`},
			{taskList + "?created_resources=" + href, 200, ""},
		}
		for _, c := range cases {
			r := e.get(c.path)
			if r.Status != c.status || (c.body != "" && strings.TrimSpace(string(r.Body)) != c.body) {
				t.Errorf("GET %s: %d %s, want %d %s", c.path, r.Status, r.Body, c.status, c.body)
			}
		}
		// An unreadable boolean filters nothing; "0" is false.
		count := func(path string) float64 {
			var l struct{ Count float64 }
			if err := json.Unmarshal(e.get(path).Body, &l); err != nil {
				t.Fatal(err)
			}
			return l.Count
		}
		if all, bad, off := count(api+"workers/"), count(api+"workers/?online=perhaps"), count(api+"workers/?online=0"); bad != all || off != 0 || all == 0 {
			t.Errorf("workers: all %v, online=perhaps %v, online=0 %v", all, bad, off)
		}
	})
}
