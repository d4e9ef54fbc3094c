package models

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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

// LabelSelect applies a pulp_label_select expression: comma-separated terms, all required:
// key, !key, key=value, key!=value, key~substring. Labels are stored as canonical JSON, so each
// term is a LIKE on the encoded pair.
func LabelSelect(q *gorm.DB, column, expr string) (*gorm.DB, error) {
	terms := splitEscaped(expr)
	for _, term := range terms {
		enc := func(s string) string {
			b, _ := jsonString(s)
			return likeEscape(b)
		}
		switch {
		case strings.HasPrefix(term, "!"):
			q = q.Where(column+" NOT LIKE ? ESCAPE '\\'", "%"+enc(term[1:])+":%")
		case strings.Contains(term, "!="):
			kv := strings.SplitN(term, "!=", 2)
			q = q.Where(column+" LIKE ? ESCAPE '\\' AND "+column+" NOT LIKE ? ESCAPE '\\'",
				"%"+enc(kv[0])+":%", "%"+enc(kv[0])+":"+enc(kv[1])+"%")
		case strings.Contains(term, "="):
			kv := strings.SplitN(term, "=", 2)
			v := enc(kv[1])
			q = q.Where("("+column+" LIKE ? ESCAPE '\\' OR "+column+" LIKE ? ESCAPE '\\')",
				"%"+enc(kv[0])+":"+v+",%", "%"+enc(kv[0])+":"+v+"}")
		case strings.Contains(term, "~"):
			// The key's value, not the whole document: a LIKE on the JSON text would match
			// keys case-insensitively and substrings spanning several pairs.
			kv := strings.SplitN(term, "~", 2)
			pattern := "%" + likeEscape(strings.ToLower(kv[1])) + "%"
			if IsPostgres(q) {
				q = q.Where("LOWER(CAST("+column+" AS jsonb) ->> ?) LIKE ? ESCAPE '\\'", kv[0], pattern)
			} else {
				q = q.Where("LOWER(json_extract("+column+", ?)) LIKE ? ESCAPE '\\'", `$."`+kv[0]+`"`, pattern)
			}
		case term != "":
			q = q.Where(column+" LIKE ? ESCAPE '\\'", "%"+enc(term)+":%")
		}
	}
	return q, nil
}

func splitEscaped(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
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
