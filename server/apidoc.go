package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/openapi"
)

// opInfo is what the middlewares need to know of one operation.
type opInfo struct {
	id        string
	anonymous bool
	query     map[string]bool
	boolean   map[string]bool // the query parameters of type boolean
	// choices are the query parameters with an enum: their values, and whether one parameter
	// holds a comma-separated list of them (explode: false).
	choices map[string]paramChoices
}

type paramChoices struct {
	values map[string]bool
	comma  bool
}

// specIndex is openapi/pulp.yaml, parsed once, indexed by Gin route.
type specIndex struct {
	doc   map[string]any
	ops   map[string]*opInfo // "GET /pulp/api/v3/tasks/:pulp_id/"
	allow map[string]string  // Gin route → its Allow header ("GET, PATCH, DELETE, HEAD, OPTIONS")
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func loadSpec() (*specIndex, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openapi.Spec, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi/pulp.yaml: %w", err)
	}
	idx := &specIndex{doc: doc, ops: map[string]*opInfo{}, allow: map[string]string{}}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ginPath := pathParam.ReplaceAllString(path, ":$1")
		for method, raw := range item.(map[string]any) {
			op, ok := raw.(map[string]any)
			if !ok || strings.HasPrefix(method, "x-") {
				continue
			}
			info := &opInfo{query: map[string]bool{}, boolean: map[string]bool{}, choices: map[string]paramChoices{}}
			info.id, _ = op["operationId"].(string)
			_, secured := op["security"]
			info.anonymous = !secured
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				if pm["in"] == "query" {
					info.query[pm["name"].(string)] = true
					sch, _ := pm["schema"].(map[string]any)
					if sch["type"] == "boolean" {
						info.boolean[pm["name"].(string)] = true
					}
					enum, _ := sch["enum"].([]any)
					comma := false
					if items, ok := sch["items"].(map[string]any); ok && sch["type"] == "array" {
						enum, _ = items["enum"].([]any)
						comma = pm["explode"] == false
					}
					if len(enum) > 0 {
						pc := paramChoices{values: map[string]bool{}, comma: comma}
						for _, e := range enum {
							pc.values[fmt.Sprint(e)] = true
						}
						info.choices[pm["name"].(string)] = pc
					}
				}
			}
			idx.ops[strings.ToUpper(method)+" "+ginPath] = info
		}
	}
	for path := range paths {
		ginPath := pathParam.ReplaceAllString(path, ":$1")
		var methods []string
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if _, ok := idx.ops[m+" "+ginPath]; ok {
				methods = append(methods, m)
			}
		}
		if len(methods) > 0 && methods[0] == "GET" {
			methods = append(methods, "HEAD")
		}
		idx.allow[ginPath] = strings.Join(append(methods, "OPTIONS"), ", ")
	}
	return idx, nil
}

func (s *specIndex) operation(c *gin.Context) *opInfo {
	if c.FullPath() == "" {
		return nil
	}
	method := c.Request.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	return s.ops[method+" "+c.FullPath()]
}

// servedDocument derives the document pulp-cli downloads: object paths rewritten into Pulp's
// href templates (one path parameter per operation), and the info keys pulp-glue reads.
func (s *specIndex) servedDocument() ([]byte, error) {
	raw, err := json.Marshal(s.doc)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	paths := doc["paths"].(map[string]any)
	out := map[string]any{}
	for path, rawItem := range paths {
		item := rawItem.(map[string]any)
		key := path
		if hp, ok := item["x-pulp-href-path"].(string); ok {
			key = hp
			delete(item, "x-pulp-href-path")
			hrefParam := pathParam.FindStringSubmatch(hp)[1]
			for method, rawOp := range item {
				op := rawOp.(map[string]any)
				var params []any
				added := false
				for _, p := range op["parameters"].([]any) {
					pm := p.(map[string]any)
					if pm["in"] == "path" {
						if !added {
							params = append(params, map[string]any{"in": "path", "name": hrefParam,
								"required": true, "schema": map[string]any{"type": "string"}})
							added = true
						}
						continue
					}
					params = append(params, pm)
				}
				op["parameters"] = params
				item[method] = op
			}
		}
		out[key] = item
	}
	doc["paths"] = out
	versions := map[string]any{}
	for _, c := range Versions {
		versions[c.Name] = c.Version
	}
	info := doc["info"].(map[string]any)
	info["x-pulp-app-versions"] = versions
	info["x-pulp-domain-enabled"] = false
	return json.Marshal(doc)
}

// DocsApiJsonGet serves the API document (anonymous, no redirect), as pulp-cli downloads it.
func (s *Server) DocsApiJsonGet(c *gin.Context, params gen.DocsApiJsonGetParams) {
	c.Header("Content-Disposition", `inline; filename="Pulp 3 API.json"`)
	c.Data(http.StatusOK, "application/vnd.oai.openapi+json", s.apiDoc)
}
