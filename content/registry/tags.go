package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Paging of tags/list and _catalog, as Pulp does it.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// serveTags answers GET /v2/<name>/tags/list: {"name": name, "tags": [...]}, sorted, paged
// with n and last, and a Link to the next page when a full page comes back. name is the name
// asked for (a registry mirror's unprefixed one, whose ns the Link keeps).
func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, img Image, name string) {
	tags, err := img.Tags(req.Context())
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if !slices.IsSorted(tags) {
		tags = slices.Clone(tags)
		slices.Sort(tags)
	}
	n, last := pageParams(req.URL.Query())
	if last != "" {
		tags = tags[sort.SearchStrings(tags, last):]
		if len(tags) > 0 && tags[0] == last {
			tags = tags[1:]
		}
	}
	tags = tags[:min(n, len(tags))]
	if tags == nil {
		tags = []string{}
	}
	next := "/v2/" + name + "/tags/list"
	if ns := req.URL.Query().Get("ns"); ns != "" {
		next += "?ns=" + url.QueryEscape(ns) // a mirror's next page is the same upstream's
	}
	setNextLink(w, next, n, tags)
	writeJSON(w, req, map[string]any{"name": name, "tags": tags})
}

// pageParams reads n (default 100, at most 1000, negative is 0) and last from a query.
func pageParams(q url.Values) (n int, last string) {
	n = defaultPageSize
	if s := q.Get("n"); s != "" {
		if v, err := strconv.Atoi(s); err == nil {
			n = v
		}
	}
	return max(0, min(n, maxPageSize)), q.Get("last")
}

// setNextLink adds the Link header to the next page when page is full; path may carry a
// query of its own.
func setNextLink(w http.ResponseWriter, path string, n int, page []string) {
	if n == 0 || len(page) < n {
		return
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	w.Header().Set("Link", fmt.Sprintf(`<%s%sn=%d&last=%s>; rel="next"`, path, sep, n, url.QueryEscape(page[len(page)-1])))
}

// writeJSON answers 200 with v as JSON (no body for HEAD).
func writeJSON(w http.ResponseWriter, req *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
