package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

// page is a decoded list response.
type page struct {
	Count    int              `json:"count"`
	Next     *string          `json:"next"`
	Previous *string          `json:"previous"`
	Results  []map[string]any `json:"results"`
}

func (r *resp) page(t *testing.T) page {
	t.Helper()
	r.expect(t, http.StatusOK)
	r.results(t) // checks the shape
	var p page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func strOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func TestPagination(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		for _, n := range []string{"alpha", "beta", "gamma"} {
			e.create(ptRemotes, map[string]any{"name": n, "url": "https://" + n + ".example"})
		}
		const host = "api.example:24817"
		base := "http://" + host + ptRemotes
		cases := []struct {
			query      string
			names      []string
			next, prev any
		}{
			{"?limit=1", []string{"gamma"}, base + "?limit=1&offset=1", nil},
			{"?limit=1&offset=1&fields=name,pulp_href", []string{"beta"},
				base + "?fields=name%2Cpulp_href&limit=1&offset=2", base + "?fields=name%2Cpulp_href&limit=1"},
			{"?offset=2&limit=1", []string{"alpha"}, nil, base + "?limit=1&offset=1"},
			{"?limit=2&offset=1", []string{"beta", "alpha"}, nil, base + "?limit=2"},
			{"?limit=abc", []string{"gamma", "beta", "alpha"}, nil, nil},
			{"?limit=abc&offset=1", []string{"beta", "alpha"}, nil, base + "?limit=100"},
			{"?limit=2&offset=x", []string{"gamma", "beta"}, base + "?limit=2&offset=2", nil},
			{"?limit=0&offset=-1", []string{"gamma", "beta", "alpha"}, nil, nil},
			{"", []string{"gamma", "beta", "alpha"}, nil, nil},
			{"?offset=10", []string{}, nil, base + "?limit=100"}, // back one page of 100: offset 0, dropped
			{"?limit=1&offset=5&name__contains=a", []string{}, nil, base + "?limit=1&name__contains=a&offset=4"},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				p := e.get(ptRemotes+c.query, withHost(host)).page(t)
				var names []string
				for _, r := range p.Results {
					names = append(names, r["name"].(string))
				}
				if names == nil {
					names = []string{}
				}
				if p.Count != 3 || !reflect.DeepEqual(names, c.names) {
					t.Errorf("count %d names %v, want 3 %v", p.Count, names, c.names)
				}
				if strOrNil(p.Next) != c.next || strOrNil(p.Previous) != c.prev {
					t.Errorf("next %v previous %v, want %v %v", strOrNil(p.Next), strOrNil(p.Previous), c.next, c.prev)
				}
			})
		}
		t.Run("fields selects keys", func(t *testing.T) {
			p := e.get(ptRemotes + "?limit=1&offset=1&fields=name,pulp_href").page(t)
			if len(p.Results[0]) != 2 {
				t.Errorf("result %v: want only name and pulp_href", p.Results[0])
			}
		})
		t.Run("following next visits everything once", func(t *testing.T) {
			var names []string
			next := ptRemotes + "?limit=2"
			for i := 0; next != ""; i++ {
				if i > 3 {
					t.Fatal("next never became null")
				}
				p := e.get(next).page(t)
				for _, r := range p.Results {
					names = append(names, r["name"].(string))
				}
				next = ""
				if p.Next != nil {
					u, err := url.Parse(*p.Next)
					if err != nil || u.Host != e.host || u.Scheme != "http" {
						t.Fatalf("next %q: want an absolute URL on %s", *p.Next, e.host)
					}
					next = *p.Next
				}
			}
			if !reflect.DeepEqual(names, []string{"gamma", "beta", "alpha"}) {
				t.Errorf("pages gave %v", names)
			}
		})
	})
}

func TestFieldSelection(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(ptRemotes, map[string]any{"name": "docker-cache", "url": "https://registry-1.docker.io"})
		h := href(rem)
		m := e.get(h+"?exclude_fields=hidden_fields,headers").expect(t, http.StatusOK).obj(t)
		if _, ok := m["hidden_fields"]; ok {
			t.Errorf("hidden_fields not excluded")
		}
		if _, ok := m["headers"]; ok {
			t.Errorf("headers not excluded")
		}
		if len(m) != len(rem)-2 {
			t.Errorf("%d keys, want %d", len(m), len(rem)-2)
		}
		e.get(h+"?fields=name,url").bodyIs(t, http.StatusOK, `{"name": "docker-cache", "url": "https://registry-1.docker.io"}`)
		e.get(h+"?fields=name&fields=url").bodyIs(t, http.StatusOK, `{"name": "docker-cache", "url": "https://registry-1.docker.io"}`)
		e.get(ptRemotes+"?fields=name&exclude_fields=name").bodyIs(t, http.StatusOK,
			`{"count": 1, "next": null, "previous": null, "results": [{}]}`)
	})
}

func TestListFilters(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		byName := map[string]map[string]any{}
		for _, n := range []string{"alpha", "beta", "gamma"} {
			byName[n] = e.create(ptRemotes, map[string]any{"name": n, "url": "https://" + n + ".example"})
		}
		e.post(href(byName["alpha"])+"set_label/", map[string]any{"key": "env", "value": "dev"}).expect(t, http.StatusCreated)
		e.post(href(byName["beta"])+"set_label/", map[string]any{"key": "env", "value": "prod"}).expect(t, http.StatusCreated)
		e.post(href(byName["beta"])+"set_label/", map[string]any{"key": "tier", "value": "web"}).expect(t, http.StatusCreated)

		cases := []struct {
			query string
			want  []string
		}{
			{"ordering=name", []string{"alpha", "beta", "gamma"}},
			{"ordering=-name", []string{"gamma", "beta", "alpha"}},
			{"ordering=pulp_created", []string{"alpha", "beta", "gamma"}},
			{"name=beta", []string{"beta"}},
			{"name__in=alpha,gamma&ordering=name", []string{"alpha", "gamma"}},
			{"name__contains=et", []string{"beta"}},
			{"name__contains=a&ordering=name", []string{"alpha", "beta", "gamma"}},
			{"name__contains=ALP", []string{}},
			{"name__icontains=ALP", []string{"alpha"}},
			{"name__startswith=g", []string{"gamma"}},
			{"pulp_label_select=" + url.QueryEscape("env=dev"), []string{"alpha"}},
			{"pulp_label_select=env&ordering=name", []string{"alpha", "beta"}},
			{"pulp_label_select=" + url.QueryEscape("!env"), []string{"gamma"}},
			{"pulp_label_select=" + url.QueryEscape("env!=dev"), []string{"beta"}},
			{"pulp_label_select=" + url.QueryEscape("env~PRO"), []string{"beta"}},
			{"pulp_label_select=" + url.QueryEscape("env=prod,tier=web"), []string{"beta"}},
			{"pulp_label_select=" + url.QueryEscape("env=dev,tier"), []string{}},
			{"pulp_href__in=" + href(byName["alpha"]) + "," + href(byName["gamma"]) + "&ordering=name", []string{"alpha", "gamma"}},
			{"prn__in=" + byName["beta"]["prn"].(string), []string{"beta"}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				got := e.get(ptRemotes+"?"+c.query).expect(t, http.StatusOK).names(t)
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("names %v, want %v", got, c.want)
				}
			})
		}

		errCases := []struct{ path, want string }{
			{ptRemotes + "?ordering=-name,bogus", `{"ordering": ["Select a valid choice. bogus is not one of the available choices."]}`},
			{ptRemotes + "?nonexistent_filter=1&fields=name", `{"errors": ["Invalid Filter: 'nonexistent_filter'"]}`},
			{distributions + "?repository=/pulp/api/v3/nope/&fields=name", `["URI couldn't be resolved: /pulp/api/v3/nope/"]`},
			{ptRemotes + "?pulp_href__in=/pulp/api/v3/nope/", `["URI couldn't be resolved: /pulp/api/v3/nope/"]`},
			{taskList + "?reserved_resources=/pulp/api/v3/nope/", `["URI couldn't be resolved: /pulp/api/v3/nope/"]`},
			// pulpcore's LabelFilter: a DRF ValidationError raised by a filter is a bare list.
			{ptRemotes + "?pulp_label_select=" + url.QueryEscape("=="), `["Invalid search term: '=='."]`},
			{ptRemotes + "?pulp_label_select=", `["Invalid search term: ''."]`},
			{ptRemotes + "?pulp_label_select=" + url.QueryEscape("env,"), `["Invalid search term: ''."]`},
			{ptRemotes + "?pulp_label_select=" + url.QueryEscape("!env=dev"), `["Cannot use an operator with '!env'."]`},
			{distributions + "?pulp_label_select=" + url.QueryEscape("~x"), `["Invalid search term: '~x'."]`},
			{repositories + "?pulp_label_select=" + url.QueryEscape("!"), `["Invalid search term: '!'."]`},
		}
		for _, c := range errCases {
			t.Run(c.path, func(t *testing.T) {
				e.get(c.path).bodyIs(t, http.StatusBadRequest, c.want)
			})
		}

		t.Run("repository filter by href and PRN", func(t *testing.T) {
			repo := e.create(repositories, map[string]any{"name": "r"})
			other := e.create(repositories, map[string]any{"name": "other"})
			e.createAsync(distributions, map[string]any{"name": "d1", "base_path": "d1", "repository": href(repo)})
			e.createAsync(distributions, map[string]any{"name": "d2", "base_path": "d2", "repository": href(other)})
			for _, ref := range []string{href(repo), repo["prn"].(string), "http://" + e.host + href(repo)} {
				got := e.get(distributions + "?repository=" + url.QueryEscape(ref)).names(t)
				if !reflect.DeepEqual(got, []string{"d1"}) {
					t.Errorf("repository=%s: %v", ref, got)
				}
			}
			got := e.get(distributions + "?repository__in=" + href(repo) + "," + href(other)).names(t)
			sort.Strings(got)
			if !reflect.DeepEqual(got, []string{"d1", "d2"}) {
				t.Errorf("repository__in: %v", got)
			}
			lbl := e.get(distributions + "?base_path__contains=1").names(t)
			if !reflect.DeepEqual(lbl, []string{"d1"}) {
				t.Errorf("base_path__contains: %v", lbl)
			}
		})
	})
}

func TestLabels(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rem := e.create(ptRemotes, map[string]any{"name": "r", "url": "https://x"})
		repo := e.create(repositories, map[string]any{"name": "repo"})
		dist := e.createAsync(distributions, map[string]any{"name": "d", "base_path": "d"})
		// Namespaces have no labels endpoints in Pulp.
		e.post(href(e.create(namespaces, map[string]any{"name": "ns"}))+"set_label/", map[string]any{"key": "a", "value": "b"}).
			expect(t, http.StatusNotFound)
		for _, obj := range []map[string]any{rem, repo, dist} {
			h := href(obj)
			t.Run(h, func(t *testing.T) {
				e.post(h+"set_label/", map[string]any{"key": "env", "value": "dev"}).bodyIs(t, http.StatusCreated, `{"key": "env", "value": "dev"}`)
				e.post(h+"set_label/", map[string]any{"key": "env", "value": "prod"}).bodyIs(t, http.StatusCreated, `{"key": "env", "value": "prod"}`)
				jsonEq(t, mustJSON(t, e.get(h).obj(t)["pulp_labels"]), `{"env": "prod"}`)
				e.post(h+"unset_label/", map[string]any{"key": "env"}).bodyIs(t, http.StatusCreated, `{"key": "env", "value": "prod"}`)
				jsonEq(t, mustJSON(t, e.get(h).obj(t)["pulp_labels"]), `{}`)
				e.post(h+"unset_label/", map[string]any{"key": "env"}).bodyIs(t, http.StatusBadRequest,
					`{"key": ["Label 'env' is not set on the object."]}`)
				e.post(h+"set_label/", map[string]any{"value": "x"}).bodyIs(t, http.StatusBadRequest, `{"key": ["This field is required."]}`)
			})
		}
		t.Run("labels on create", func(t *testing.T) {
			r := e.create(ptRemotes, map[string]any{"name": "labelled", "url": "https://x", "pulp_labels": map[string]string{"a": "1", "b": "2"}})
			jsonEq(t, mustJSON(t, r["pulp_labels"]), `{"a": "1", "b": "2"}`)
			got := e.get(ptRemotes + "?pulp_label_select=" + url.QueryEscape("a=1,b")).names(t)
			if !reflect.DeepEqual(got, []string{"labelled"}) {
				t.Errorf("label select: %v", got)
			}
		})
	})
}

// TestLimitIsClamped checks that ?limit= above 1000 answers 1000 results with next set, so
// that one request cannot make the server render a whole table.
func TestLimitIsClamped(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		rows := make([]models.Remote, 1001)
		now := models.Now()
		for i := range rows {
			rows[i] = models.Remote{ID: models.NewID(), PulpType: models.KindPullThroughRemote.PulpType, PulpCreated: now,
				PulpLastUpdated: now, Name: fmt.Sprintf("remote-%04d", i), URL: "https://x.example", PulpLabels: models.Labels{},
				Policy: "on_demand", TLSValidation: true}
		}
		if err := e.db.CreateInBatches(rows, 200).Error; err != nil {
			t.Fatal(err)
		}
		const host = "api.example:24817"
		base := "http://" + host + ptRemotes
		for _, q := range []string{"?limit=100000", "?limit=1001", "?limit=1000"} {
			p := e.get(ptRemotes+q, withHost(host)).page(t)
			if p.Count != 1001 || len(p.Results) != 1000 || strOrNil(p.Next) != base+"?limit=1000&offset=1000" || p.Previous != nil {
				t.Errorf("%s: count %d, %d results, next %v, previous %v; want 1001, 1000, %s?limit=1000&offset=1000, nil",
					q, p.Count, len(p.Results), strOrNil(p.Next), strOrNil(p.Previous), base)
			}
		}
		p := e.get(ptRemotes+"?limit=100000&offset=1000", withHost(host)).page(t)
		if len(p.Results) != 1 || p.Next != nil || strOrNil(p.Previous) != base+"?limit=1000" {
			t.Errorf("last page: %d results, next %v, previous %v", len(p.Results), strOrNil(p.Next), strOrNil(p.Previous))
		}
	})
}
