package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// maxLimit is the largest page a list answers; a larger ?limit= gets this many, with next
// pointing at the rest (Pulp has no bound).
const maxLimit = 1000

// listQuery is a list request: pagination, ordering, field selection, and filters.
type listQuery struct {
	limit, offset   int
	ordering        []string
	fields, exclude []string
	filters         map[string]string
}

func splitAll(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, models.SplitList(v)...)
	}
	return out
}

func parseListQuery(c *gin.Context) listQuery {
	q := c.Request.URL.Query()
	lq := listQuery{limit: 100, filters: map[string]string{}}
	for name, vals := range q {
		switch name {
		case "limit":
			if n, err := strconv.Atoi(vals[0]); err == nil && n > 0 {
				lq.limit = min(n, maxLimit)
			}
		case "offset":
			if n, err := strconv.Atoi(vals[0]); err == nil && n >= 0 {
				lq.offset = n
			}
		case "ordering":
			lq.ordering = splitAll(vals)
		case "fields":
			lq.fields = splitAll(vals)
		case "exclude_fields":
			lq.exclude = splitAll(vals)
		default:
			lq.filters[name] = vals[0]
		}
	}
	return lq
}

// selectFields applies ?fields= and ?exclude_fields= to one rendered object.
func selectFields(m map[string]any, fields, exclude []string) map[string]any {
	if len(fields) > 0 {
		keep := map[string]any{}
		for _, f := range fields {
			if v, ok := m[f]; ok {
				keep[f] = v
			}
		}
		m = keep
	}
	for _, f := range exclude {
		delete(m, f)
	}
	return m
}

func fieldParams(c *gin.Context) (fields, exclude []string) {
	q := c.Request.URL.Query()
	return splitAll(q["fields"]), splitAll(q["exclude_fields"])
}

// renderObject sends one object with status code, honouring ?fields= and ?exclude_fields=.
func (s *Server) renderObject(c *gin.Context, code int, obj models.Object) error {
	m, err := obj.Serialize(s.db, c.Request.Host)
	if err != nil {
		return err
	}
	fields, exclude := fieldParams(c)
	return writeJSON(c, code, selectFields(m, fields, exclude))
}

// orderSQL turns ?ordering= into SQL using the spec's columns; Pulp's 400 for unknown keys.
func orderSQL(spec *models.ListSpec, ordering []string) (string, error) {
	var parts []string
	for _, o := range ordering {
		desc := strings.HasPrefix(o, "-")
		name := strings.TrimPrefix(o, "-")
		col, ok := spec.Columns[name]
		if name == "pk" || name == "pulp_id" {
			col, ok = "id", true
		}
		if !ok {
			return "", models.NewValidationError("ordering", "Select a valid choice. "+o+" is not one of the available choices.")
		}
		if desc {
			col += " DESC"
		}
		parts = append(parts, col)
	}
	if len(parts) == 0 {
		return spec.Order, nil
	}
	return strings.Join(parts, ", "), nil
}

// pageLink builds Pulp's absolute next/previous link: the request's parameters, re-encoded and
// sorted, with limit set to the effective limit and offset replaced (dropped when 0), as DRF's
// LimitOffsetPagination does.
func pageLink(c *gin.Context, limit, offset int) string {
	q := c.Request.URL.Query()
	q.Set("limit", strconv.Itoa(limit))
	q.Del("offset")
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: c.Request.Host, Path: c.Request.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// list answers a list operation over spec, rendering rows of T.
func list[T any, PT interface {
	*T
	models.Object
}](s *Server, c *gin.Context, spec *models.ListSpec) error {
	return listView[T, PT](s, c, spec, nil)
}

// listView is list with the results rendered through view (nil: as they are), for the
// generic lists that show every type through its base serializer.
func listView[T any, PT interface {
	*T
	models.Object
}](s *Server, c *gin.Context, spec *models.ListSpec, view func(*gin.Context, map[string]any) map[string]any) error {
	lq := parseListQuery(c)
	q, err := spec.Apply(s.db.WithContext(c), lq.filters)
	if err != nil {
		return err
	}
	order, err := orderSQL(spec, lq.ordering)
	if err != nil {
		return err
	}
	var rows []T
	count, err := models.Page(q, order, lq.limit, lq.offset, &rows)
	if err != nil {
		return err
	}
	results := make([]any, 0, len(rows))
	for i := range rows {
		m, err := PT(&rows[i]).Serialize(s.db, c.Request.Host)
		if err != nil {
			return err
		}
		if view != nil {
			m = view(c, m)
		}
		results = append(results, selectFields(m, lq.fields, lq.exclude))
	}
	return writePage(c, lq, count, results)
}

// scopeType restricts a query to one pulp_type.
func scopeType(t string) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB { return q.Where("pulp_type = ?", t) }
}

// writePage sends one page of a list: count, absolute next/previous links (null at the ends)
// and the rendered results.
func writePage(c *gin.Context, lq listQuery, count int64, results []any) error {
	var next, prev any
	if int64(lq.offset+lq.limit) < count {
		next = pageLink(c, lq.limit, lq.offset+lq.limit)
	}
	if lq.offset > 0 {
		prev = pageLink(c, lq.limit, max(lq.offset-lq.limit, 0))
	}
	return writeJSON(c, http.StatusOK, map[string]any{"count": count, "next": next, "previous": prev, "results": results})
}
