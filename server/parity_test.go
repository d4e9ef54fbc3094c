package server_test

import (
	"net/http"
	"testing"
)

// TestPulpParityDetails pins behaviours the differential test against the real Pulp found
// (test/parity), so that make test keeps them without Pulp: Pulp's label messages, the tasks'
// state choices, PUT's declared defaults, the hyperlink message of an href of another type of
// the same family, no_content_change_since, and the generic lists' base serializers.
func TestPulpParityDetails(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		repo := e.create(repositories, map[string]any{"name": "parity"})
		href := repo["pulp_href"].(string)
		e.post(href+"set_label/", map[string]any{"key": "bad key!", "value": "v"}).bodyIs(t, http.StatusBadRequest,
			`{"non_field_errors": ["Key 'bad key!' contains invalid characters. Only alphanumerics, underscores, spaces, hyphens, and dots are allowed."]}`)
		e.post(href+"set_label/", map[string]any{"key": "k", "value": "v(1)"}).bodyIs(t, http.StatusBadRequest,
			`{"non_field_errors": ["Key 'k' contains value with parenthesis."]}`)
		e.post(repositories, map[string]any{"name": "x", "pulp_labels": map[string]any{"a b!": "v"}}).bodyIs(t, http.StatusBadRequest,
			`{"pulp_labels": ["Key 'a b!' contains invalid characters. Only alphanumerics, underscores, spaces, hyphens, and dots are allowed."]}`)
		e.post(href+"unset_label/", map[string]any{"key": "nothing"}).bodyIs(t, http.StatusBadRequest,
			`{"key": ["Label 'nothing' is not set on the object."]}`)

		e.get(taskList+"?state=sleeping").bodyIs(t, http.StatusBadRequest,
			`{"state": ["Select a valid choice. sleeping is not one of the available choices."]}`)
		e.get(taskList+"?state__in=sleeping").expect(t, http.StatusOK)

		remote := e.create(remotes, map[string]any{"name": "r", "url": "http://a.example", "upstream_name": "x", "policy": "streamed"})
		rhref := remote["pulp_href"].(string)
		e.waitTaskOK(e.put(rhref, map[string]any{"name": "r", "url": "http://a.example", "upstream_name": "x"}).taskHref(t))
		if got := e.get(rhref).obj(t)["policy"]; got != "immediate" {
			t.Errorf("policy after a PUT without it: %v, want the declared default immediate", got)
		}

		e.post(ptDistribution, map[string]any{"name": "pt", "base_path": "pt", "remote": rhref}).bodyIs(t, http.StatusBadRequest,
			`{"remote": ["Invalid hyperlink - Object does not exist."]}`)
		e.post(ptDistribution, map[string]any{"name": "pt", "base_path": "pt", "remote": href}).bodyIs(t, http.StatusBadRequest,
			`{"remote": ["Invalid hyperlink - Incorrect URL match."]}`)

		version := repo["latest_version_href"].(string)
		task := e.waitTaskOK(e.post(distributions, map[string]any{"name": "d", "base_path": "d", "repository_version": version}).taskHref(t))
		dist := e.get(task["created_resources"].([]any)[0].(string)).obj(t)
		if dist["no_content_change_since"] != dist["pulp_last_updated"] {
			t.Errorf("no_content_change_since %v, want pulp_last_updated %v for a pinned version", dist["no_content_change_since"], dist["pulp_last_updated"])
		}

		generic := e.get(api + "distributions/?name=d").results(t)
		if len(generic) != 1 || generic[0]["base_url"] != "http://"+e.host+"/pulp/content/d/" || generic[0]["private"] != nil {
			t.Errorf("generic distribution %v: want base_url and no private field", generic)
		}
		if _, ok := generic[0]["private"]; ok {
			t.Error("generic distribution list shows the container-only field private")
		}
		gr := e.get(api + "remotes/?name=r").results(t)
		if _, ok := gr[0]["upstream_name"]; ok || len(gr[0]["hidden_fields"].([]any)) != 5 {
			t.Errorf("generic remote %v: want the base fields and 5 hidden fields", gr[0])
		}
	})
}
