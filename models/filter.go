package models

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gorm.io/gorm"
)

// FilterFunc applies one special filter (an href, a label selector...) to q.
type FilterFunc func(q *gorm.DB, value string) (*gorm.DB, error)

// ListSpec says how a list endpoint filters and orders one table.
type ListSpec struct {
	// Model is a pointer to the gorm model listed (its table is queried).
	Model any
	// Scope restricts the table to the listed kind (nil for none).
	Scope func(q *gorm.DB) *gorm.DB
	// Columns maps API field names that support the generic lookups (exact, __in,
	// __contains, __gt...) to SQL columns.
	Columns map[string]string
	// Special handles filters by their full parameter name.
	Special map[string]FilterFunc
	// Order is the default ordering (SQL).
	Order string
}

// FilterError is a list filter Pulp would reject; Errors is rendered as {"errors": [...]}.
type FilterError struct{ Msg string }

func (e *FilterError) Error() string { return e.Msg }

// BareListError is an error Pulp renders as a bare JSON list (unresolvable hrefs in filters).
type BareListError struct{ Msg string }

func (e *BareListError) Error() string { return e.Msg }

var lookups = []string{"in", "contains", "icontains", "iexact", "startswith", "istartswith",
	"gt", "gte", "lt", "lte", "isnull", "ne", "range"}

// Apply adds the filters in params (name → value; pagination, ordering and field selection
// already removed) to q.
func (s *ListSpec) Apply(q *gorm.DB, params map[string]string) (*gorm.DB, error) {
	q = q.Model(s.Model)
	if s.Scope != nil {
		q = s.Scope(q)
	}
	for name, value := range params {
		if f, ok := s.Special[name]; ok {
			var err error
			if q, err = f(q, value); err != nil {
				return nil, err
			}
			continue
		}
		field, op := name, ""
		for _, l := range lookups {
			if strings.HasSuffix(name, "__"+l) {
				field, op = strings.TrimSuffix(name, "__"+l), l
				break
			}
		}
		col, ok := s.Columns[field]
		if !ok {
			return nil, &FilterError{Msg: fmt.Sprintf("Invalid Filter: '%s'", name)}
		}
		var err error
		if q, err = lookup(q, col, op, value); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func lookup(q *gorm.DB, col, op, value string) (*gorm.DB, error) {
	conv := func(v string) any {
		if col == "pulp_created" || col == "pulp_last_updated" || strings.HasSuffix(col, "_at") || col == "last_heartbeat" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t.UTC()
			}
		}
		return v
	}
	switch op {
	case "":
		return q.Where(col+" = ?", conv(value)), nil
	case "ne":
		return q.Where(col+" <> ?", conv(value)), nil
	case "in":
		vals := []any{}
		for _, v := range SplitList(value) {
			vals = append(vals, conv(v))
		}
		return q.Where(col+" IN ?", vals), nil
	case "contains":
		return q.Where(containsSQL(q, col), value), nil
	case "icontains":
		return q.Where("LOWER("+col+") LIKE ? ESCAPE '\\'", "%"+likeEscape(strings.ToLower(value))+"%"), nil
	case "iexact":
		return q.Where("LOWER("+col+") = ?", strings.ToLower(value)), nil
	case "startswith":
		return q.Where("substr("+col+", 1, ?) = ?", len([]rune(value)), value), nil
	case "istartswith":
		return q.Where("LOWER("+col+") LIKE ? ESCAPE '\\'", likeEscape(strings.ToLower(value))+"%"), nil
	case "gt", "gte", "lt", "lte":
		sym := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
		return q.Where(col+" "+sym+" ?", conv(value)), nil
	case "isnull":
		if b, _ := strconv.ParseBool(value); b {
			return q.Where(col + " IS NULL"), nil
		}
		return q.Where(col + " IS NOT NULL"), nil
	case "range":
		parts := SplitList(value)
		if len(parts) != 2 {
			return nil, &FilterError{Msg: fmt.Sprintf("Invalid range for '%s': %q", col, value)}
		}
		return q.Where(col+" >= ? AND "+col+" <= ?", conv(parts[0]), conv(parts[1])), nil
	}
	return nil, &FilterError{Msg: "Invalid Filter: '" + col + "__" + op + "'"}
}

func containsSQL(q *gorm.DB, col string) string {
	if IsPostgres(q) {
		return "strpos(" + col + ", ?) > 0"
	}
	return "instr(" + col + ", ?) > 0"
}

// SplitList splits a comma-separated filter value.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// LabelSelect applies a pulp_label_select expression: comma-separated terms (a comma preceded
// by a backslash does not separate), all required: key, !key, key=value, key!=value,
// key~substring. It parses each term as pulpcore's LabelFilter does (the regex
// `(!?[\w .\-]+)(=|!=|~)?(.*)?` matched at the start of the term), and refuses what it
// refuses with its messages, as a bare JSON list (a DRF ValidationError raised by a filter).
// Labels are stored as canonical JSON, so each term is a LIKE on the encoded pair.
func LabelSelect(q *gorm.DB, column, expr string) (*gorm.DB, error) {
	for _, raw := range splitUnescaped(expr) {
		term, err := parseLabelTerm(raw)
		if err != nil {
			return nil, err
		}
		enc := func(s string) string {
			b, _ := jsonString(s)
			return likeEscape(b)
		}
		switch term.op {
		case "!":
			q = q.Where(column+" NOT LIKE ? ESCAPE '\\'", "%"+enc(term.key)+":%")
		case "!=":
			q = q.Where(column+" LIKE ? ESCAPE '\\' AND "+column+" NOT LIKE ? ESCAPE '\\'",
				"%"+enc(term.key)+":%", "%"+enc(term.key)+":"+enc(term.value)+"%")
		case "=":
			v := enc(term.value)
			q = q.Where("("+column+" LIKE ? ESCAPE '\\' OR "+column+" LIKE ? ESCAPE '\\')",
				"%"+enc(term.key)+":"+v+",%", "%"+enc(term.key)+":"+v+"}")
		case "~":
			// The key's value, not the whole document: a LIKE on the JSON text would match
			// keys case-insensitively and substrings spanning several pairs.
			pattern := "%" + likeEscape(strings.ToLower(term.value)) + "%"
			if IsPostgres(q) {
				q = q.Where("LOWER(CAST("+column+" AS jsonb) ->> ?) LIKE ? ESCAPE '\\'", term.key, pattern)
			} else {
				key, _ := jsonString(term.key)
				q = q.Where("LOWER(json_extract("+column+", ?)) LIKE ? ESCAPE '\\'", "$."+key, pattern)
			}
		default:
			q = q.Where(column+" LIKE ? ESCAPE '\\'", "%"+enc(term.key)+":%")
		}
	}
	return q, nil
}

// labelTerm is one parsed pulp_label_select term; op is "" (has key), "!" (lacks key), "=",
// "!=" or "~".
type labelTerm struct{ key, op, value string }

// isLabelKeyChar is pulpcore's LABEL_KEY_CHARS, [\w .\-], with Python's Unicode \w.
func isLabelKeyChar(r rune) bool {
	return r == '_' || r == ' ' || r == '.' || r == '-' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// parseLabelTerm parses one term as pulpcore 3.116's LabelFilter: an optional "!", the longest
// run of key characters (at least one), then an optional operator and the rest as the value.
// Text after a key without an operator is ignored ("a b!" is key "a b"), as the regex ignores it.
func parseLabelTerm(term string) (labelTerm, error) {
	rest, neg := strings.CutPrefix(term, "!")
	n := strings.IndexFunc(rest, func(r rune) bool { return !isLabelKeyChar(r) })
	if n < 0 {
		n = len(rest)
	}
	if n == 0 {
		return labelTerm{}, &BareListError{Msg: "Invalid search term: '" + term + "'."}
	}
	t := labelTerm{key: rest[:n]}
	rest = rest[n:]
	for _, op := range []string{"=", "!=", "~"} {
		if strings.HasPrefix(rest, op) {
			t.op, t.value = op, strings.ReplaceAll(rest[len(op):], `\,`, ",")
			break
		}
	}
	if neg {
		if t.op != "" {
			return labelTerm{}, &BareListError{Msg: "Cannot use an operator with '!" + t.key + "'."}
		}
		t.op = "!"
	}
	return t, nil
}

// splitUnescaped splits s at every comma not preceded by a backslash, as pulpcore's
// re.split(r"(?<!\\),", value): terms are neither trimmed nor unescaped.
func splitUnescaped(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && (i == 0 || s[i-1] != '\\') {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// Page runs q with ordering, limit and offset into dest and returns the total count.
func Page(q *gorm.DB, order string, limit, offset int, dest any) (int64, error) {
	var count int64
	if err := q.Session(&gorm.Session{}).Count(&count).Error; err != nil {
		return 0, err
	}
	if order != "" {
		q = q.Order(order)
	}
	err := q.Limit(limit).Offset(offset).Find(dest).Error
	return count, err
}
