package server

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulpgo/pulpgo/models"
)

// The request schemas of openapi/pulp.yaml say which fields a body may carry and, for each,
// its type, whether it is required or nullable, whether it may be blank (minLength), its
// minimum, its choices and its default. The field tables that bind validates against are
// derived from them when the server starts; a serializer adds only what the document cannot
// say (rule): which objects an href may name, uniqueness, the model key, defaults Pulp sets
// outside its serializer, the refusals that are ours, and the few places where we accept more
// than the document does.

// fieldKind is the JSON type a request field accepts.
type fieldKind int

const (
	fString fieldKind = iota
	fBool
	fInt
	fFloat
	fStrings
	fLabels
	fHeaders
	fRef
)

// field describes one writable field of a request body, as a DRF serializer field does: the
// request schema's property (schema.go) with its serializer's rule.
type field struct {
	name        string // API name
	key         string // model json key (default: name)
	kind        fieldKind
	required    bool
	nullable    bool
	blank       bool
	choices     []string
	itemChoices []string // fStrings: the choices of every item
	min         *float64
	max         *float64
	unique      bool
	refKinds    []models.Kind // fRef: accepted kinds; KindRepositoryVersion for version hrefs
	def         any           // the spec's default: on create and on a PUT without the field
	ignore      bool          // accepted and dropped (inherited fields that mean nothing here)
	ident       bool          // fString: a name or path, refused with control or bidi override characters
	url         bool          // fString: an http or https URL
	consumed    bool          // turned into other fields by the serializer's check, never stored
}

func (f field) modelKey() string {
	if f.key != "" {
		return f.key
	}
	return f.name
}

// serializer is the writable shape of one kind: a request schema of openapi/pulp.yaml, whose
// fields New derives, and what Pulp does beyond it.
type serializer struct {
	schema string // the request schema's name in openapi/pulp.yaml
	kind   models.Kind
	model  any // empty model, for uniqueness queries
	rules  map[string]rule
	// readOnly names response fields that a body may carry and that are ignored.
	readOnly []string
	// check runs the remaining validation on the merged values (Go types by API name), even
	// when fields failed, as DRF reports field validators together: checks of one field must
	// skip a field that already has errors, and cross-field checks (DRF's validate()) must run
	// only when errs is still empty.
	check func(s *Server, in *input, errs *models.ValidationError)
}

var commonReadOnly = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated"}

// rule is what a serializer says of one field of its request schema beyond the schema.
type rule struct {
	key      string        // model json key, when it is not the API name
	unique   bool          // no other object of the kind has the same value
	refKinds []models.Kind // an href field: the kinds it may name (KindRepositoryVersion for versions)
	ignore   bool          // accepted and dropped (inherited fields that mean nothing here)
	ident    bool          // a name or path: control and bidi override characters are refused
	url      bool          // an http or https URL with a host
	// plain reads a "format: uri" string as text rather than as an href.
	plain bool
	// nullable accepts null where the document does not (it only widens).
	nullable bool
	// required refuses a body without the field where the document does not say so (Pulp's
	// PATCH schemas list no required field, even where its serializer requires one).
	required bool
	// consumed marks a write-only field that the serializer's check turns into other fields
	// (include_tags): it has no model field of its own.
	consumed bool
}

// requestFields derives ser's field table from its request schema and its rules. It fails
// when a rule names a field the schema does not have or the schema has a field of a shape bind
// cannot decode.
func (x *specIndex) requestFields(ser *serializer) ([]field, error) {
	schema, ok := x.schema(ser.schema)
	if !ok {
		return nil, fmt.Errorf("serializer %q: no such schema in openapi/pulp.yaml", ser.schema)
	}
	props, _ := schema["properties"].(map[string]any)
	for name := range ser.rules {
		if _, ok := props[name]; !ok {
			return nil, fmt.Errorf("schema %s has no field %q that its serializer has a rule for", ser.schema, name)
		}
	}
	required := map[string]bool{}
	if list, ok := schema["required"].([]any); ok {
		for _, n := range list {
			required[n.(string)] = true
		}
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	fields := make([]field, 0, len(names))
	for _, name := range names {
		p, _ := props[name].(map[string]any)
		f, err := x.specField(name, p, ser.rules[name])
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", ser.schema, err)
		}
		f.required = required[name] || f.required
		fields = append(fields, f)
	}
	return fields, nil
}

// specField reads one property of a request schema, with its rule.
func (x *specIndex) specField(name string, p map[string]any, r rule) (field, error) {
	f := field{name: name, key: r.key, unique: r.unique, refKinds: r.refKinds, ignore: r.ignore,
		ident: r.ident, url: r.url, required: r.required, consumed: r.consumed}
	f.nullable, _ = p["nullable"].(bool)
	f.nullable = f.nullable || r.nullable
	f.def = p["default"]
	if n, ok := p["minimum"].(float64); ok {
		f.min = &n
	} else if n, ok := p["minimum"].(int); ok {
		m := float64(n)
		f.min = &m
	}
	if n, ok := p["maximum"].(float64); ok {
		f.max = &n
	} else if n, ok := p["maximum"].(int); ok {
		m := float64(n)
		f.max = &m
	}
	t := x.resolve(p)
	switch t["type"] {
	case "string":
		f.kind = fString
		if t["format"] == "uri" && !r.plain {
			f.kind = fRef
		}
		f.choices = stringList(t["enum"])
		// A ChoiceField has no blank check of its own: "" is refused as a choice.
		minLen, _ := t["minLength"].(int)
		f.blank = f.kind == fString && minLen == 0 && len(f.choices) == 0
	case "boolean":
		f.kind = fBool
	case "integer":
		f.kind = fInt
	case "number":
		f.kind = fFloat
	case "object":
		if ap, ok := t["additionalProperties"].(map[string]any); !ok || ap["type"] != "string" {
			return field{}, fmt.Errorf("field %q: an object that is not a map of strings", name)
		}
		f.kind = fLabels
	case "array":
		items := x.resolve(asMap(t["items"]))
		switch items["type"] {
		case "object":
			f.kind = fHeaders
		case "string", nil:
			f.kind = fStrings
			f.itemChoices = stringList(items["enum"])
		default:
			return field{}, fmt.Errorf("field %q: a list of %v", name, items["type"])
		}
	default:
		return field{}, fmt.Errorf("field %q: type %v", name, t["type"])
	}
	if f.kind != fRef && f.refKinds != nil {
		return field{}, fmt.Errorf("field %q: href kinds for a field that is not a URI", name)
	}
	return f, nil
}

// schema returns the component schema name.
func (x *specIndex) schema(name string) (map[string]any, bool) {
	comps, _ := x.doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	s, ok := schemas[name].(map[string]any)
	return s, ok
}

// resolve follows a property's $ref, or the one $ref of its allOf (as drf-spectacular writes
// an enum with a default), to the schema that has its type.
func (x *specIndex) resolve(p map[string]any) map[string]any {
	ref, _ := p["$ref"].(string)
	if all, ok := p["allOf"].([]any); ok && len(all) == 1 {
		ref, _ = asMap(all[0])["$ref"].(string)
	}
	if s, ok := x.schema(strings.TrimPrefix(ref, "#/components/schemas/")); ok && ref != "" {
		return s
	}
	return p
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// serializers are every serializer of the API, compiled against the document at start.
var serializers = []*serializer{
	containerRemoteSerializer, pullThroughRemoteSerializer,
	containerRepositorySerializer, pushRepositorySerializer,
	containerDistributionSerializer, pullThroughDistributionSerializer,
	namespaceSerializer, contentRedirectGuardSerializer,
	setLabelSerializer, unsetLabelSerializer, cancelSerializer,
	recursiveManageSerializer, tagImageSerializer, untagImageSerializer, removeImageSerializer,
	tagCopySerializer, manifestCopySerializer, syncSerializer, orphansCleanupSerializer,
	userSerializer,
}

// compileSerializers derives the field table of every serializer.
func (x *specIndex) compileSerializers() (map[*serializer][]field, error) {
	out := map[*serializer][]field{}
	for _, ser := range serializers {
		fields, err := x.requestFields(ser)
		if err != nil {
			return nil, err
		}
		out[ser] = fields
	}
	return out, nil
}
