package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const secret = "s3cret-never-shown"

func hiddenFields(names []string, set map[string]bool) string {
	var parts []string
	for _, n := range names {
		v := "false"
		if set[n] {
			v = "true"
		}
		parts = append(parts, `{"name": "`+n+`", "is_set": `+v+`}`)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var ptHidden = []string{"client_key", "proxy_username", "proxy_password", "username", "password"}
var containerHidden = append(append([]string{}, ptHidden...), "include_tags", "exclude_tags")

func TestRemoteCreate(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		t.Run("pull-through defaults", func(t *testing.T) {
			r := e.post(ptRemotes, map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"}).expect(t, http.StatusCreated)
			m := r.obj(t)
			h := href(m)
			if !strings.HasPrefix(h, ptRemotes) || r.Header.Get("Location") != h {
				t.Errorf("pulp_href %q, Location %q", h, r.Header.Get("Location"))
			}
			id := strings.TrimSuffix(strings.TrimPrefix(h, ptRemotes), "/")
			want := map[string]any{
				"prn": "prn:container.containerpullthroughremote:" + id, "name": "docker-cache",
				"url": "https://registry-1.docker.io", "policy": "on_demand", "tls_validation": true,
				"ca_cert": nil, "client_cert": nil, "proxy_url": nil, "max_retries": nil, "total_timeout": nil,
				"connect_timeout": nil, "sock_connect_timeout": nil, "sock_read_timeout": nil, "headers": nil,
				"download_concurrency": nil, "rate_limit": nil, "includes": nil, "excludes": nil,
			}
			for k, v := range want {
				if got, ok := m[k]; !ok || got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			jsonEq(t, mustJSON(t, m["pulp_labels"]), `{}`)
			jsonEq(t, mustJSON(t, m["hidden_fields"]), hiddenFields(ptHidden, nil))
			wantKeys := len(want) + 5 // pulp_href, pulp_created, pulp_last_updated, pulp_labels, hidden_fields
			if len(m) != wantKeys {
				t.Errorf("%d keys, want %d: %s", len(m), wantKeys, r.Body)
			}
			for _, k := range []string{"pulp_created", "pulp_last_updated"} {
				if s, _ := m[k].(string); len(s) != len("2026-11-24T23:43:41.003324Z") || !strings.HasSuffix(s, "Z") {
					t.Errorf("%s = %v", k, m[k])
				}
			}
		})
		t.Run("container remote secrets are write-only", func(t *testing.T) {
			r := e.post(remotes, map[string]any{"name": "busybox", "url": "http://127.0.0.1:1",
				"upstream_name": "library/busybox", "include_tags": []string{"latest"}, "password": secret,
				"username": "bob"}).expect(t, http.StatusCreated)
			m := r.obj(t)
			jsonEq(t, mustJSON(t, m["hidden_fields"]), hiddenFields(containerHidden, map[string]bool{"password": true, "username": true}))
			if m["policy"] != "immediate" || m["upstream_name"] != "library/busybox" || m["tls_validation"] != true {
				t.Errorf("defaults: %s", r.Body)
			}
			jsonEq(t, mustJSON(t, m["includes"]), `["latest"]`)
			for _, k := range []string{"password", "username", "include_tags", "exclude_tags", "client_key"} {
				if _, ok := m[k]; ok {
					t.Errorf("response has write-only %q", k)
				}
			}
			h := href(m)
			bodies := [][]byte{r.Body, e.get(h).expect(t, 200).Body, e.get(remotes).expect(t, 200).Body,
				e.get(api+"remotes/").expect(t, 200).Body}
			task := e.waitTaskOK(e.patch(h, map[string]any{"url": "http://127.0.0.1:2", "password": secret + "2"}).taskHref(t))
			bodies = append(bodies, mustJSON(t, task), e.get(taskList).Body)
			for i, b := range bodies {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("response %d shows the password: %s", i, b)
				}
			}
		})
		t.Run("form-encoded body", func(t *testing.T) {
			r := e.post(ptRemotes, url.Values{"name": {"formremote"}, "url": {"https://quay.io"}}).expect(t, http.StatusCreated)
			m := r.obj(t)
			// DRF's form quirk: an omitted boolean is false.
			if m["name"] != "formremote" || m["url"] != "https://quay.io" || m["tls_validation"] != false || m["policy"] != "on_demand" {
				t.Errorf("form create: %s", r.Body)
			}
		})
	})
}

func TestRemoteValidation(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		orig := e.create(ptRemotes, map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"})
		cases := []struct {
			name string
			path string
			body any
			want string
		}{
			{"duplicate name", ptRemotes, map[string]any{"name": "docker-cache", "url": "https://other.example"},
				`{"name": ["This field must be unique."]}`},
			{"duplicate name across kinds", remotes, map[string]any{"name": "docker-cache", "url": "https://other.example", "upstream_name": "x"},
				`{"name": ["This field must be unique."]}`},
			{"missing and blank", ptRemotes, map[string]any{"url": ""},
				`{"name": ["This field is required."], "url": ["This field may not be blank."]}`},
			{"empty body", ptRemotes, map[string]any{},
				`{"name": ["This field is required."], "url": ["This field is required."]}`},
			{"container remote needs upstream_name", remotes, map[string]any{"name": "c", "url": "https://x"},
				`{"upstream_name": ["This field is required."]}`},
			{"invalid choice", ptRemotes, map[string]any{"name": "x", "url": "https://a", "policy": "immediate"},
				`{"policy": ["\"immediate\" is not a valid choice."]}`},
			{"invalid choice on container remote", remotes, map[string]any{"name": "x", "url": "https://a", "upstream_name": "x", "policy": "bogus"},
				`{"policy": ["\"bogus\" is not a valid choice."]}`},
			{"unknown field", ptRemotes, map[string]any{"name": "unk", "url": "https://x", "foo": 1},
				`{"foo": ["Unexpected field"]}`},
			{"null name", ptRemotes, map[string]any{"name": nil, "url": "https://x"},
				`{"name": ["This field may not be null."]}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.post(c.path, c.body).bodyIs(t, http.StatusBadRequest, c.want)
			})
		}
		t.Run("malformed JSON", func(t *testing.T) {
			m := e.post(ptRemotes, rawJSON(`{"name": "broken`)).expect(t, http.StatusBadRequest).obj(t)
			d, _ := m["detail"].(string)
			if len(m) != 1 || !strings.HasPrefix(d, "JSON parse error - ") {
				t.Errorf("body %v", m)
			}
		})
		t.Run("not an object", func(t *testing.T) {
			e.post(ptRemotes, rawJSON(`["a"]`)).bodyIs(t, http.StatusBadRequest,
				`{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`)
		})
		t.Run("nothing changed", func(t *testing.T) {
			rs := e.get(api + "remotes/").results(t)
			if len(rs) != 1 {
				t.Fatalf("%d remotes after refused creates, want 1", len(rs))
			}
			got := e.get(href(orig)).expect(t, 200)
			jsonEq(t, got.Body, string(mustJSON(t, orig)))
		})
	})
}

func TestRemoteUpdate(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(ptRemotes, map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"})
		h := href(rem)
		t.Run("PATCH unchanged is 200 with the object", func(t *testing.T) {
			r := e.patch(h, map[string]any{"name": "docker-cache"}).expect(t, http.StatusOK)
			jsonEq(t, r.Body, string(mustJSON(t, rem)))
			r = e.patch(h, map[string]any{}).expect(t, http.StatusOK)
			jsonEq(t, r.Body, string(mustJSON(t, rem)))
			if n := len(e.get(taskList).results(t)); n != 0 {
				t.Errorf("%d tasks after unchanged PATCHes", n)
			}
		})
		t.Run("PATCH changed is 202 and the task has the result", func(t *testing.T) {
			task := e.waitTaskOK(e.patch(h, map[string]any{"includes": []string{"library/*"}}).taskHref(t))
			if task["name"] != "pulpcore.app.tasks.base.ageneral_update" {
				t.Errorf("task name %v", task["name"])
			}
			res, _ := task["result"].(map[string]any)
			if res == nil || res["pulp_href"] != h || res["name"] != "docker-cache" {
				t.Fatalf("result %v", task["result"])
			}
			jsonEq(t, mustJSON(t, res["includes"]), `["library/*"]`)
			jsonEq(t, mustJSON(t, task["reserved_resources_record"]),
				`["prn:container.containerpullthroughremote:`+strings.TrimSuffix(strings.TrimPrefix(h, ptRemotes), "/")+
					`", "shared:prn:core.domain:018f0000-0000-7000-8000-000000000001"]`)
			got := e.get(h).obj(t)
			jsonEq(t, mustJSON(t, got["includes"]), `["library/*"]`)
			if got["pulp_last_updated"] == rem["pulp_last_updated"] {
				t.Errorf("pulp_last_updated did not change")
			}
		})
		t.Run("PUT missing required", func(t *testing.T) {
			e.put(h, map[string]any{"url": "https://quay.io"}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field is required."]}`)
		})
		t.Run("PUT full", func(t *testing.T) {
			task := e.waitTaskOK(e.put(h, map[string]any{"name": "renamed", "url": "https://quay.io"}).taskHref(t))
			res := task["result"].(map[string]any)
			if res["name"] != "renamed" || res["url"] != "https://quay.io" {
				t.Errorf("result %v", res)
			}
		})
		t.Run("PATCH to a taken name", func(t *testing.T) {
			e.create(ptRemotes, map[string]any{"name": "other", "url": "https://x"})
			e.patch(h, map[string]any{"name": "other"}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field must be unique."]}`)
		})
	})
}

func TestRemoteDeleteAndNotFound(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(remotes, map[string]any{"name": "r", "url": "https://x", "upstream_name": "u"})
		h := href(rem)
		task := e.waitTaskOK(e.del(h).taskHref(t))
		if task["name"] != "pulpcore.app.tasks.base.ageneral_delete" {
			t.Errorf("task name %v", task["name"])
		}
		e.get(h).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerRemote matches the given query."}`)
		e.del(h).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerRemote matches the given query."}`)
		e.patch(h, map[string]any{"url": "https://y"}).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerRemote matches the given query."}`)

		cases := []struct{ path, want string }{
			{ptRemotes + "00000000-0000-0000-0000-000000000000/", "No ContainerPullThroughRemote matches the given query."},
			{repositories + "00000000-0000-0000-0000-000000000000/", "No ContainerRepository matches the given query."},
			{distributions + "00000000-0000-0000-0000-000000000000/", "No ContainerDistribution matches the given query."},
			{taskList + "00000000-0000-0000-0000-000000000000/", "No Task matches the given query."},
			{ptRemotes + "not-a-uuid/", "Not found."},
			{remotes + "not-a-uuid/", "Not found."},
			{taskList + "123/", "Not found."},
			{api + "nope/", "Not found."},
		}
		for _, c := range cases {
			e.get(c.path).bodyIs(t, http.StatusNotFound, `{"detail": "`+c.want+`"}`)
		}
		// A remote of the other kind is not found under this kind's endpoint.
		pt := e.create(ptRemotes, map[string]any{"name": "pt", "url": "https://x"})
		other := remotes + strings.TrimPrefix(href(pt), ptRemotes)
		e.get(other).bodyIs(t, http.StatusNotFound, `{"detail": "No ContainerRemote matches the given query."}`)
	})
}
