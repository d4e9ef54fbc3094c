package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// fuzzTargets are the requests FuzzAPIJSON sends its bodies to: the creates of each kind of
// object, and an update of a remote.
var fuzzTargets = []struct{ method, path string }{
	{"POST", repositories},
	{"POST", remotes},
	{"POST", ptRemotes},
	{"POST", distributions},
	{"POST", ptDistribution},
	{"POST", namespaces},
}

// FuzzAPIJSON sends any JSON body to the API's creates and updates (one API on the embedded
// engine for the whole run). Property: the API never panics nor answers 5xx; it either
// succeeds (2xx with a JSON object) or refuses the body with DRF's 400 format, a JSON object
// whose values are lists of messages (per field, or non_field_errors) or a "detail" string.
func FuzzAPIJSON(f *testing.F) {
	_, _, h := startAPI(f, testenv.Embedded(), nil, adminPassword)
	// An object to update, so that PATCH bodies meet a real remote.
	rec := serve(h, "POST", ptRemotes, []byte(`{"name":"fuzz-target","url":"https://registry.example"}`))
	var created struct {
		Href string `json:"pulp_href"`
	}
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &created) != nil {
		f.Fatalf("create the remote to update: %d %s", rec.Code, rec.Body)
	}
	targets := append(fuzzTargets, struct{ method, path string }{"PATCH", created.Href})
	for _, body := range []string{
		`{"name":"r1"}`,
		`{"name":"r2","description":"d","retain_repo_versions":3,"pulp_labels":{"k":"v"}}`,
		`{"name":"hub","url":"https://registry-1.docker.io","upstream_name":"library/busybox","policy":"on_demand","includes":["1.*"]}`,
		`{"name":"pt","url":"https://registry-1.docker.io","tls_validation":false,"headers":[{"X-A":"b"}],"download_concurrency":2}`,
		`{"name":"d","base_path":"a/b","private":true}`,
		`{"name":7}`, `{"name":null}`, `[]`, `"x"`, `{`, ``, `{"name":"a","name":"b"}`, `{"url":"file:///etc/passwd","name":"f"}`,
		`{"name":"x","retain_repo_versions":-1}`, `{"name":"x","pulp_labels":[1]}`, `{"name":"\u202e"}`,
		`{"name":"x","timeout":1e400}`, `{"name":"x","rate_limit":9223372036854775808}`,
	} {
		for i := range targets {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		tg := targets[int(target)%len(targets)]
		rec := serve(h, tg.method, tg.path, body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %s %q: %d %s", tg.method, tg.path, body, rec.Code, rec.Body)
		case rec.Code == http.StatusBadRequest:
			if !drfError(rec.Body.Bytes()) {
				t.Fatalf("%s %s %q: 400 body %s is not DRF's format", tg.method, tg.path, body, rec.Body)
			}
		case rec.Code >= 200 && rec.Code < 300:
			var obj map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &obj); err != nil {
				t.Fatalf("%s %s %q: %d with a body that is not a JSON object: %s", tg.method, tg.path, body, rec.Code, rec.Body)
			}
		default:
			t.Fatalf("%s %s %q: unexpected %d %s", tg.method, tg.path, body, rec.Code, rec.Body)
		}
	})
}

// serve sends one JSON request as admin straight to the API's handler.
func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth("admin", adminPassword)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// drfError reports whether b is a DRF validation error: a non-empty JSON object whose values
// are non-empty lists of strings, a "detail" string, or the errors of a field's own validator,
// which DRF nests under the field's name as an object of strings (Pulp's base_path overlap:
// {"base_path": {"base_path": "Overlaps with existing distribution 'd'"}}, beside the other
// fields' errors).
func drfError(b []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil || len(obj) == 0 {
		return false
	}
	for k, v := range obj {
		var msgs []string
		var detail string
		var nested map[string]string
		switch {
		case json.Unmarshal(v, &msgs) == nil && len(msgs) > 0:
		case k == "detail" && json.Unmarshal(v, &detail) == nil && detail != "":
		case json.Unmarshal(v, &nested) == nil && len(nested) > 0 && nested[k] != "":
		default:
			return false
		}
	}
	return true
}
