package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// input is a validated request body.
type input struct {
	// values are keyed by model json key, ready for models.Create/Update.
	values map[string]json.RawMessage
	// merged holds decoded values by API name (existing object's values underneath, for updates).
	merged map[string]any
	// present says which API names the body carried.
	present map[string]bool
	// id is the object being updated ("" on create).
	id string
}

type mode int

const (
	modeCreate mode = iota
	modePut
	modePatch
)

// readBody decodes a JSON (or form) object body into raw values; a body that is not an
// object is Pulp's 400 (415 for a media type DRF has no parser for).
func readBody(c *gin.Context) (body map[string]json.RawMessage, form bool, err error) {
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, 8<<20))
	if err != nil {
		return nil, false, errDetail(http.StatusBadRequest, "Could not read the request body: "+err.Error())
	}
	ct, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
		vals, msg := parseForm(ct, params["boundary"], raw)
		if msg != "" {
			return nil, true, errDetail(http.StatusBadRequest, msg)
		}
		body = map[string]json.RawMessage{}
		for k, v := range vals {
			b, _ := json.Marshal(v[0])
			body[k] = b
		}
		return body, true, nil
	}
	if ct != "" && ct != "application/json" && len(raw) > 0 {
		// DRF's parsers: JSON, form, multipart; anything else is refused.
		return nil, false, errDetail(http.StatusUnsupportedMediaType,
			fmt.Sprintf("Unsupported media type %q in request.", c.GetHeader("Content-Type")))
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return map[string]json.RawMessage{}, false, nil
	}
	var anyBody any
	if err := json.Unmarshal(raw, &anyBody); err != nil {
		return nil, false, errDetail(http.StatusBadRequest, "JSON parse error - "+err.Error())
	}
	if _, isObj := anyBody.(map[string]any); !isObj {
		return nil, false, models.NewValidationError("non_field_errors",
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", jsonTypeName(anyBody)))
	}
	_ = json.Unmarshal(raw, &body)
	return body, false, nil
}

// parseForm reads the values of a urlencoded or multipart body (as DRF's FormParser and
// MultiPartParser do; files are not accepted anywhere here); msg is the 400 detail on failure.
func parseForm(ct, boundary string, raw []byte) (vals url.Values, msg string) {
	if len(raw) == 0 {
		return url.Values{}, ""
	}
	if ct == "multipart/form-data" {
		form, err := multipart.NewReader(bytes.NewReader(raw), boundary).ReadForm(8 << 20)
		if err != nil {
			return nil, "Multipart form parse error - " + err.Error()
		}
		defer form.RemoveAll()
		return form.Value, ""
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, "Form parse error - " + err.Error()
	}
	return vals, ""
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case float64:
		return "int"
	case bool:
		return "bool"
	case nil:
		return "NoneType"
	}
	return "dict"
}

// bind validates the request body against ser; existing is the object being updated (nil on
// create). Every field error is in the one *models.ValidationError it returns.
func (s *Server) bind(c *gin.Context, ser *serializer, m mode, existing models.Object) (*input, error) {
	body, form, err := readBody(c)
	if err != nil {
		return nil, err
	}
	in, err := s.bindBody(ser, m, existing, body, form)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		// Validation looks objects up (references, unique fields, base paths), and a lookup
		// that failed reads as a missing or conflicting object: a 400 found while the database
		// does not answer is its 503 instead.
		ctx, cancel := context.WithTimeout(c.Request.Context(), statusCheckTimeout)
		defer cancel()
		if perr := models.Ping(ctx, s.db); models.IsUnavailable(perr) {
			return nil, perr
		}
	}
	return in, err
}

// fieldsOf returns ser's field table, derived from the document when the server started.
func (s *Server) fieldsOf(ser *serializer) []field {
	fields, ok := s.fields[ser]
	if !ok {
		panic("server: serializer for " + ser.schema + " is not in serializers")
	}
	return fields
}

func (s *Server) bindBody(ser *serializer, m mode, existing models.Object, body map[string]json.RawMessage, form bool) (*input, error) {
	errs := &models.ValidationError{}
	known := map[string]bool{"csrfmiddlewaretoken": true}
	fields := s.fieldsOf(ser)
	for _, f := range fields {
		known[f.name] = true
	}
	for _, n := range append(append([]string{}, commonReadOnly...), ser.readOnly...) {
		known[n] = true
	}
	for k := range body {
		if !known[k] {
			errs.Add(k, "Unexpected field")
		}
	}
	in := &input{values: map[string]json.RawMessage{}, merged: map[string]any{}, present: map[string]bool{}}
	if existing != nil {
		in.id = idOf(existing)
		cur, _ := existing.Serialize(s.db, "")
		for k, v := range cur {
			in.merged[k] = v
		}
	}
	for _, f := range fields {
		raw, has := body[f.name]
		if !has {
			if m != modePatch && f.required {
				errs.Add(f.name, "This field is required.")
				continue
			}
			if m != modePatch && f.def != nil && !f.ignore {
				// A declared default applies to a PUT that leaves the field out too (DRF).
				b, _ := json.Marshal(f.def)
				in.values[f.modelKey()] = b
				in.merged[f.name] = f.def
			}
			if m == modeCreate && form && f.kind == fBool && !f.ignore {
				in.values[f.modelKey()] = json.RawMessage("false")
				in.merged[f.name] = false
			}
			continue
		}
		in.present[f.name] = true
		v, msg := s.decodeField(f, raw, form)
		if msg != "" {
			errs.Add(f.name, msg)
			continue
		}
		if f.ignore {
			continue
		}
		in.merged[f.name] = v.api
		b, _ := json.Marshal(v.model)
		in.values[f.modelKey()] = b
		if f.unique && v.model != nil {
			var n int64
			q := s.db.Model(ser.model).Where(f.modelKey()+" = ?", v.model)
			if in.id != "" {
				q = q.Where("id <> ?", in.id)
			}
			if err := q.Count(&n).Error; err == nil && n > 0 {
				errs.Add(f.name, "This field must be unique.")
			}
		}
	}
	if ser.check != nil {
		ser.check(s, in, errs)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return in, nil
}

// decoded is a field value as the API shows it and as the model stores it.
type decoded struct {
	api   any
	model any
}

// decodeField decodes one field of a body: null (and what DRF reads as null) first, then the
// value by the field's kind.
func (s *Server) decodeField(f field, raw json.RawMessage, form bool) (decoded, string) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return decoded{}, "Invalid value."
	}
	// DRF's RelatedField turns an empty string into None before validating it.
	if v == nil || (v == "" && f.kind == fRef) || (form && v == "" && f.nullable && f.kind != fString) {
		if !f.nullable {
			return decoded{}, "This field may not be null."
		}
		return decoded{}, ""
	}
	switch f.kind {
	case fString:
		return decodeString(f, v)
	case fBool:
		return decodeBool(v)
	case fInt:
		return decodeInt(f, v)
	case fFloat:
		return decodeFloat(f, v)
	case fStrings:
		return decodeStrings(f, v, form)
	case fLabels:
		return decodeLabels(v, form)
	case fHeaders:
		return decodeHeaders(v)
	case fRef:
		return s.decodeRef(f, v)
	}
	return decoded{}, "Unsupported field."
}

// decodeString is DRF's CharField (trimmed, blank refused unless allowed, numbers taken as
// their text) or, with choices, its ChoiceField (compared as str(value)), plus our refusals.
func decodeString(f field, v any) (decoded, string) {
	var str string
	switch x := v.(type) {
	case string:
		str = x
	case float64:
		str = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		// DRF's CharField refuses booleans; its ChoiceField compares str(value).
		if len(f.choices) == 0 {
			return decoded{}, "Not a valid string."
		}
		str = strings.ToUpper(strconv.FormatBool(x)[:1]) + strconv.FormatBool(x)[1:]
	default:
		return decoded{}, "Not a valid string."
	}
	if len(f.choices) == 0 {
		str = strings.TrimSpace(str) // CharField's trim_whitespace
	}
	if str == "" && !f.blank {
		return decoded{}, "This field may not be blank."
	}
	if len(f.choices) > 0 && !contains(f.choices, str) {
		return decoded{}, fmt.Sprintf("\"%s\" is not a valid choice.", str)
	}
	if strings.ContainsRune(str, 0) {
		return decoded{}, msgNullCharacters
	}
	if f.ident && hasControlOrBidi(str) {
		return decoded{}, "Control characters and bidirectional override characters are not allowed."
	}
	if f.url && str != "" {
		if msg := httpURLError(str); msg != "" {
			return decoded{}, msg
		}
	}
	return decoded{str, str}, ""
}

// decodeBool is DRF's BooleanField, with its textual spellings.
func decodeBool(v any) (decoded, string) {
	switch x := v.(type) {
	case bool:
		return decoded{x, x}, ""
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on", "t", "y":
			return decoded{true, true}, ""
		case "false", "0", "no", "off", "f", "n":
			return decoded{false, false}, ""
		}
	case float64:
		if x == 1 || x == 0 {
			return decoded{x == 1, x == 1}, ""
		}
	}
	return decoded{}, "Must be a valid boolean."
}

// decodeInt is DRF's IntegerField: a whole number, or its text.
func decodeInt(f field, v any) (decoded, string) {
	var n int64
	switch x := v.(type) {
	case float64:
		if x != float64(int64(x)) {
			return decoded{}, "A valid integer is required."
		}
		n = int64(x)
	case string:
		p, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return decoded{}, "A valid integer is required."
		}
		n = p
	default:
		return decoded{}, "A valid integer is required."
	}
	if f.min != nil && float64(n) < *f.min {
		return decoded{}, fmt.Sprintf("Ensure this value is greater than or equal to %g.", *f.min)
	}
	if f.max != nil && float64(n) > *f.max {
		return decoded{}, fmt.Sprintf("Ensure this value is less than or equal to %d.", int64(*f.max))
	}
	return decoded{n, n}, ""
}

// decodeFloat is DRF's FloatField: a number, or its text.
func decodeFloat(f field, v any) (decoded, string) {
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return decoded{}, "A valid number is required."
		}
		n = p
	default:
		return decoded{}, "A valid number is required."
	}
	if f.min != nil && n < *f.min {
		return decoded{}, "Ensure this value is greater than or equal to " + pyFloat(*f.min) + "."
	}
	return decoded{n, n}, ""
}

// pyFloat formats f as Python's str(float) does for ordinary values (0.0, 1.5).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// formJSON reads a form value that holds JSON (a list or an object) as that JSON.
func formJSON(v any, form bool) any {
	if str, ok := v.(string); ok && form {
		var parsed any
		if json.Unmarshal([]byte(str), &parsed) == nil {
			return parsed
		}
	}
	return v
}

// decodeStrings is DRF's ListField of CharFields (or of ChoiceFields: itemChoices).
func decodeStrings(f field, v any, form bool) (decoded, string) {
	v = formJSON(v, form)
	list, ok := v.([]any)
	if !ok {
		return decoded{}, fmt.Sprintf("Expected a list of items but got type \"%s\".", jsonTypeName(v))
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		str, ok := item.(string)
		if !ok {
			return decoded{}, "Not a valid string."
		}
		if strings.ContainsRune(str, 0) {
			return decoded{}, msgNullCharacters
		}
		out = append(out, str)
	}
	if len(f.itemChoices) > 0 {
		for _, str := range out {
			if !contains(f.itemChoices, str) {
				return decoded{}, fmt.Sprintf("\"%s\" is not a valid choice.", str)
			}
		}
	}
	return decoded{out, out}, ""
}

// decodeLabels is pulpcore's LabelsField: a map of label keys to string values.
func decodeLabels(v any, form bool) (decoded, string) {
	v = formJSON(v, form)
	obj, ok := v.(map[string]any)
	if !ok {
		return decoded{}, fmt.Sprintf("Expected a dictionary of items but got type \"%s\".", jsonTypeName(v))
	}
	out := map[string]string{}
	for k, val := range obj {
		if msg := labelKeyError(k); msg != "" {
			return decoded{}, msg
		}
		str, ok := val.(string)
		if !ok {
			return decoded{}, "Label values must be strings."
		}
		if msg := labelValueError(k, str); msg != "" {
			return decoded{}, msg
		}
		if strings.ContainsRune(str, 0) {
			return decoded{}, msgNullCharacters
		}
		out[k] = str
	}
	return decoded{out, out}, ""
}

// decodeHeaders is a remote's headers: a list of objects whose names are HTTP tokens and
// whose values cannot end the header.
func decodeHeaders(v any) (decoded, string) {
	list, ok := v.([]any)
	if !ok {
		return decoded{}, fmt.Sprintf("Expected a list of items but got type \"%s\".", jsonTypeName(v))
	}
	for _, item := range list {
		h, ok := item.(map[string]any)
		if !ok {
			return decoded{}, "Each header must be an object."
		}
		for name, value := range h {
			if msg := headerError(name, value); msg != "" {
				return decoded{}, msg
			}
		}
	}
	return decoded{list, list}, ""
}

// decodeRef is DRF's HyperlinkedRelatedField: an href (or PRN) of an existing object of one
// of the field's kinds; the API shows the href and the model stores the id.
func (s *Server) decodeRef(f field, v any) (decoded, string) {
	str, ok := v.(string)
	if !ok {
		return decoded{}, "Incorrect type. Expected URL string, received " + jsonTypeName(v) + "."
	}
	id, href, msg := s.resolveRef(str, f.refKinds)
	if msg != "" {
		return decoded{}, msg
	}
	return decoded{href, id}, ""
}

// msgNullCharacters is DRF's error for a NUL in any string field.
const msgNullCharacters = "Null characters are not allowed."

// hasControlOrBidi reports whether s holds a control character (C0, DEL, C1) or a
// bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which could
// make a name display as another.
func hasControlOrBidi(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return true
		}
	}
	return false
}

// httpURLError returns the error of a URL field that is not an absolute http or https URL
// with a host, or "".
func httpURLError(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" && (u.Scheme == "http" || u.Scheme == "https") {
		return "Enter a valid URL."
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "Only http and https URLs are allowed."
	}
	return ""
}

// headerError returns the error of one remote header, or "": the name must be an HTTP token
// and the value must not hold CR, LF or NUL, which would end the header or the request.
func headerError(name string, value any) string {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return "Header names must be HTTP tokens."
	}
	if strings.ContainsAny(fmt.Sprint(value), "\r\n\x00") {
		return "Header values cannot contain CR, LF or NUL characters."
	}
	return ""
}

// isTokenChar reports whether r may appear in an HTTP token (RFC 9110, section 5.6.2).
func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// labelKeyError is Pulp's complaint about a label key (pulp_labels_validator: one or more
// word characters, spaces, dots or hyphens), "" when it is valid.
func labelKeyError(k string) string {
	valid := k != ""
	for _, r := range k {
		if !(r == '_' || r == ' ' || r == '-' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			valid = false
		}
	}
	if !valid {
		return "Key '" + k + "' contains invalid characters. Only alphanumerics, underscores, spaces, hyphens, and dots are allowed."
	}
	return ""
}

// labelValueError is Pulp's complaint about the value of label k, "" when it is valid.
func labelValueError(k, v string) string {
	if strings.ContainsAny(v, "()") {
		return "Key '" + k + "' contains value with parenthesis."
	}
	return ""
}

// resolveRef turns an href or PRN into the id of an existing object of one of kinds (for a
// repository version: the version's id). msg is Pulp's error when it cannot.
func (s *Server) resolveRef(ref string, kinds []models.Kind) (id, href, msg string) {
	r, ok := models.ParseRef(ref)
	if !ok {
		return "", "", "Invalid hyperlink - No URL match."
	}
	for _, k := range kinds {
		if k == models.KindRepositoryVersion {
			if r.Kind == models.KindRepositoryVersion {
				var v models.RepositoryVersion
				if err := s.db.Take(&v, "id = ?", r.ID).Error; err != nil {
					return "", "", "Invalid hyperlink - Object does not exist."
				}
				return v.ID, ref, ""
			}
			if r.Version == nil {
				continue
			}
			repo, err := models.GetRepository(s.db, r.Kind, r.ID)
			if err != nil {
				return "", "", "Invalid hyperlink - Object does not exist."
			}
			v, err := models.GetVersion(s.db, repo, *r.Version)
			if err != nil {
				return "", "", "Invalid hyperlink - Object does not exist."
			}
			return v.ID, repo.VersionHref(v.Number), ""
		}
		if r.Kind == k && r.Version == nil {
			obj, err := models.Get(s.db, k, r.ID)
			if err != nil {
				return "", "", "Invalid hyperlink - Object does not exist."
			}
			return r.ID, obj.Href(), ""
		}
	}
	for _, k := range kinds {
		// Pulp's related fields match a family of views (remotes(-.*/.*)-detail) and then
		// look the object up among the accepted types: another type of the same family is an
		// object that does not exist.
		if r.Version == nil && family(r.Kind) == family(k) {
			return "", "", "Invalid hyperlink - Object does not exist."
		}
	}
	return "", "", "Invalid hyperlink - Incorrect URL match."
}

// family is the first segment of a kind's endpoint: "remotes", "repositories"...
func family(k models.Kind) string {
	f, _, _ := strings.Cut(k.Endpoint, "/")
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// idOf returns the primary key of a model object.
func idOf(obj models.Object) string {
	switch o := obj.(type) {
	case *models.Remote:
		return o.ID
	case *models.Repository:
		return o.ID
	case *models.Distribution:
		return o.ID
	case *models.Namespace:
		return o.ID
	case *models.ContentGuard:
		return o.ID
	case *models.User:
		return strconv.FormatInt(o.ID, 10)
	}
	return ""
}

// countWhere counts rows of model matching a condition.
func countWhere(db *gorm.DB, model any, cond string, args ...any) int64 {
	var n int64
	db.Model(model).Where(cond, args...).Count(&n)
	return n
}
