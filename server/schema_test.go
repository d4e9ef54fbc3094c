package server

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestSerializersAgreeWithSpec checks the serializers against openapi/pulp.yaml both ways: a
// serializer's rule for a field its request schema lacks, a request schema no serializer
// reads, a schema field the model cannot store (it would be accepted and dropped), an href
// field without the kinds it may name, a read-only name that is a request field or no response
// field, all fail.
func TestSerializersAgreeWithSpec(t *testing.T) {
	x, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	compiled := map[string][]field{}
	for _, ser := range serializers {
		fields, err := x.requestFields(ser)
		compiled[ser.schema] = fields
		if err != nil {
			t.Errorf("serializer %s: %v", ser.schema, err)
			continue
		}
		props := schemaProps(x, ser.schema)
		for name := range ser.rules {
			if _, ok := props[name]; !ok {
				t.Errorf("serializer %s: rule for %q, which the schema does not have", ser.schema, name)
			}
		}
		var stored map[string]bool
		if ser.model != nil {
			stored = jsonKeys(reflect.TypeOf(ser.model))
		}
		for _, f := range fields {
			if f.kind == fRef && len(f.refKinds) == 0 && !f.ignore {
				t.Errorf("serializer %s: href field %q names no kinds", ser.schema, f.name)
			}
			if stored != nil && !f.ignore && !f.consumed && !stored[f.modelKey()] {
				t.Errorf("serializer %s: field %q (model key %q) is not a field of %T: it would be dropped",
					ser.schema, f.name, f.modelKey(), ser.model)
			}
		}
		if ser.model != nil {
			resp := schemaProps(x, ser.schema+"Response")
			for _, name := range append(append([]string{}, commonReadOnly...), ser.readOnly...) {
				if _, ok := props[name]; ok {
					t.Errorf("serializer %s: read-only %q is a request field", ser.schema, name)
				}
				if _, ok := resp[name]; !ok {
					t.Errorf("serializer %s: read-only %q is not a field of %sResponse", ser.schema, name, ser.schema)
				}
			}
		}
	}

	// Every request body of the document is read by a serializer, a PATCH body by the
	// serializer of its object (the same fields, none required).
	used := map[string]bool{}
	for _, name := range requestSchemas(x) {
		if _, ok := compiled[name]; ok {
			used[name] = true
			continue
		}
		base := strings.TrimPrefix(name, "Patched")
		if _, ok := compiled[base]; !ok || base == name {
			t.Errorf("request schema %s: no serializer reads it", name)
			continue
		}
		used[base] = true
		if got, want := sortedKeys(schemaProps(x, name)), sortedKeys(schemaProps(x, base)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s has fields %v, %s has %v", name, got, base, want)
		}
		if s, _ := x.schema(name); s["required"] != nil {
			t.Errorf("%s requires %v", name, s["required"])
		}
	}
	for _, ser := range serializers {
		if !used[ser.schema] {
			t.Errorf("serializer %s: no operation has this request body", ser.schema)
		}
	}
}

// TestRequestFieldsRefuseDisagreement checks that the derivation fails, and so New does, when
// a serializer and its schema disagree.
func TestRequestFieldsRefuseDisagreement(t *testing.T) {
	x, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ser  *serializer
		want string
	}{
		{"no such schema", &serializer{schema: "NoSuchSchema"}, "no such schema"},
		{"rule for a field the schema lacks", &serializer{schema: "UnsetLabel", rules: map[string]rule{"value": {}}},
			`no field "value"`},
		{"href kinds on a text field", &serializer{schema: "UnsetLabel", rules: map[string]rule{"key": {refKinds: repositoryKinds}}},
			"not a URI"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := x.requestFields(tc.ser); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	t.Run("a field of a shape bind cannot read", func(t *testing.T) {
		if _, err := x.specField("f", map[string]any{"type": "object"}, rule{}); err == nil {
			t.Error("an object field that is not a map of strings was accepted")
		}
		if _, err := x.specField("f", map[string]any{"type": "array", "items": map[string]any{"type": "integer"}}, rule{}); err == nil {
			t.Error("a list of integers was accepted")
		}
	})
}

// requestSchemas returns the schemas of every operation's JSON request body.
func requestSchemas(x *specIndex) []string {
	var out []string
	for _, item := range asMap(x.doc["paths"]) {
		for _, op := range asMap(item) {
			body := asMap(asMap(op)["requestBody"])
			ref, _ := asMap(asMap(asMap(body["content"])["application/json"])["schema"])["$ref"].(string)
			if ref != "" {
				out = append(out, strings.TrimPrefix(ref, "#/components/schemas/"))
			}
		}
	}
	return out
}

func schemaProps(x *specIndex, name string) map[string]any {
	s, _ := x.schema(name)
	return asMap(s["properties"])
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// jsonKeys returns the JSON keys a model decodes, embedded structs included.
func jsonKeys(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("json"), ",")[0]
		if sf.Anonymous && tag == "" {
			for k := range jsonKeys(sf.Type) {
				keys[k] = true
			}
			continue
		}
		if tag == "" {
			tag = sf.Name
		}
		if tag != "-" {
			keys[tag] = true
		}
	}
	return keys
}
