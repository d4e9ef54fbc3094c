package server_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pulpgo/pulpgo/openapi"
)

// operation is what the test compares of one OpenAPI operation.
type operation struct {
	path, method string
	op           map[string]any
}

// operations indexes a document's operations by operationId.
func operations(t *testing.T, doc map[string]any) map[string]operation {
	t.Helper()
	out := map[string]operation{}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("document has no paths")
	}
	for path, rawItem := range paths {
		item, _ := rawItem.(map[string]any)
		for method, raw := range item {
			op, ok := raw.(map[string]any)
			if !ok || strings.HasPrefix(method, "x-") || method == "parameters" {
				continue
			}
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			if prev, dup := out[id]; dup {
				t.Errorf("operationId %s on %s %s and %s %s", id, prev.method, prev.path, method, path)
			}
			out[id] = operation{path: path, method: strings.ToUpper(method), op: op}
		}
	}
	return out
}

func pathParams(op map[string]any) []map[string]any {
	var out []map[string]any
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		if pm, ok := p.(map[string]any); ok && pm["in"] == "path" {
			out = append(out, pm)
		}
	}
	return out
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

var anonymousOps = map[string]bool{"status_read": true, "livez_read": true, "docs_api.json_get": true}

func TestAPIDocument(t *testing.T) {
	var source map[string]any
	if err := yaml.Unmarshal(openapi.Spec, &source); err != nil {
		t.Fatalf("openapi/pulp.yaml: %v", err)
	}
	runAPI(t, func(t *testing.T, e *env) {
		r := e.get(api+"docs/api.json", noAuth).expect(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "application/vnd.oai.openapi+json" {
			t.Errorf("Content-Type %q", ct)
		}
		var served map[string]any
		if err := json.Unmarshal(r.Body, &served); err != nil {
			t.Fatalf("served document: %v", err)
		}
		want, got := operations(t, source), operations(t, served)

		t.Run("same operations", func(t *testing.T) {
			var missing, extra []string
			for id, w := range want {
				g, ok := got[id]
				if !ok {
					missing = append(missing, id)
					continue
				}
				if g.method != w.method {
					t.Errorf("%s: served as %s, pulp.yaml says %s", id, g.method, w.method)
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					extra = append(extra, id)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			if len(missing) > 0 || len(extra) > 0 {
				t.Errorf("served document lacks %v and adds %v", missing, extra)
			}
		})

		t.Run("href templates", func(t *testing.T) {
			for id, g := range got {
				w := want[id]
				params := pathParams(g.op)
				names := templateParam.FindAllStringSubmatch(g.path, -1)
				if len(pathParams(w.op)) == 0 {
					// A collection: the same absolute path, no path parameters.
					if g.path != w.path || len(params) != 0 || len(names) != 0 {
						t.Errorf("%s: served at %q with %d path parameters; pulp.yaml has %q", id, g.path, len(params), w.path)
					}
					continue
				}
				if !strings.HasPrefix(g.path, "{") || len(names) != 1 || len(params) != 1 {
					t.Errorf("%s: served path %q (%d path parameters): want one href template parameter", id, g.path, len(params))
					continue
				}
				p := params[0]
				if p["name"] != names[0][1] || p["required"] != true || !strings.HasSuffix(names[0][1], "_href") {
					t.Errorf("%s: path parameter %v for template %q", id, p, g.path)
				}
				if schema, _ := p["schema"].(map[string]any); schema["type"] != "string" {
					t.Errorf("%s: parameter schema %v", id, p["schema"])
				}
				// The template expands to the pulp.yaml path: {x_href}suffix ↔ /pulp/api/v3/.../{pulp_id}/suffix.
				suffix := strings.TrimPrefix(g.path, names[0][0])
				if !strings.HasSuffix(w.path, "}/"+suffix) {
					t.Errorf("%s: template %q does not end pulp.yaml path %q", id, g.path, w.path)
				}
			}
		})

		t.Run("versions", func(t *testing.T) {
			info, _ := served["info"].(map[string]any)
			status := e.get(api + "status/").obj(t)
			fromStatus := map[string]any{}
			for _, v := range status["versions"].([]any) {
				vm := v.(map[string]any)
				fromStatus[vm["component"].(string)] = vm["version"]
			}
			if !reflect.DeepEqual(info["x-pulp-app-versions"], fromStatus) {
				t.Errorf("x-pulp-app-versions %v, /status/ versions %v", info["x-pulp-app-versions"], fromStatus)
			}
			if !reflect.DeepEqual(fromStatus, map[string]any{"core": "3.116.0", "container": "2.29.0"}) {
				t.Errorf("versions %v", fromStatus)
			}
			if info["x-pulp-domain-enabled"] != false {
				t.Errorf("x-pulp-domain-enabled %v", info["x-pulp-domain-enabled"])
			}
		})

		t.Run("security", func(t *testing.T) {
			basic := []any{map[string]any{"basicAuth": []any{}}}
			for id, g := range got {
				sec, has := g.op["security"]
				switch {
				case anonymousOps[id] && has:
					t.Errorf("%s is anonymous but has security %v", id, sec)
				case !anonymousOps[id] && !reflect.DeepEqual(sec, basic):
					t.Errorf("%s: security %v, want [{basicAuth: []}]", id, sec)
				}
			}
			for id := range anonymousOps {
				if _, ok := got[id]; !ok {
					t.Errorf("served document has no %s", id)
				}
			}
		})
	})
}
