package server_test

import (
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

const (
	guards         = api + "contentguards/"
	redirectGuards = api + "contentguards/core/content_redirect/"
)

// guardKeys are the fields of pulpcore's ContentRedirectContentGuardResponse.
var guardKeys = []string{"description", "name", "prn", "pulp_created", "pulp_href", "pulp_last_updated"}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDistributionContentGuard: every container and pull-through distribution created through
// the API gets pulp_container's shared "content redirect" guard, in the task result and on read.
func TestDistributionContentGuard(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		if n := e.get(guards).expect(t, http.StatusOK).obj(t)["count"]; n != float64(0) {
			t.Fatalf("%v guards before any distribution", n)
		}
		task := e.waitTaskOK(e.post(distributions, map[string]any{"name": "a", "base_path": "a"}).taskHref(t))
		res := task["result"].(map[string]any)
		gh, _ := res["content_guard"].(string)
		if !strings.HasPrefix(gh, redirectGuards) || !models.ValidID(idOf(gh)) {
			t.Fatalf("result content_guard %v", res["content_guard"])
		}
		wantPRN := "prn:core.contentredirectcontentguard:" + idOf(gh)
		if res["content_guard_prn"] != wantPRN {
			t.Errorf("result content_guard_prn %v, want %s", res["content_guard_prn"], wantPRN)
		}
		created := task["created_resources"].([]any)
		if len(created) != 1 {
			t.Errorf("created_resources %v: the guard is not a created resource", created)
		}
		d := e.get(res["pulp_href"].(string)).expect(t, http.StatusOK).obj(t)
		if d["content_guard"] != gh || d["content_guard_prn"] != wantPRN {
			t.Errorf("read: content_guard %v %v", d["content_guard"], d["content_guard_prn"])
		}

		g := e.get(gh).expect(t, http.StatusOK).obj(t)
		if !reflect.DeepEqual(keysOf(g), guardKeys) {
			t.Errorf("guard keys %v, want %v", keysOf(g), guardKeys)
		}
		if g["name"] != "content redirect" || g["description"] != nil || g["prn"] != wantPRN || g["pulp_href"] != gh {
			t.Errorf("guard %v", g)
		}

		// One shared guard, also for pull-through distributions.
		d2 := e.createAsync(distributions, map[string]any{"name": "b", "base_path": "b"})
		remote := e.create(ptRemotes, map[string]any{"name": "pt", "url": "https://registry.example"})
		pt := e.createAsync(ptDistribution, map[string]any{"name": "pt", "base_path": "pt", "remote": href(remote)})
		if d2["content_guard"] != gh || pt["content_guard"] != gh || pt["content_guard_prn"] != wantPRN {
			t.Errorf("second distribution guard %v, pull-through guard %v, want %s", d2["content_guard"], pt["content_guard"], gh)
		}
		for _, list := range []string{guards, redirectGuards} {
			rs := e.get(list).expect(t, http.StatusOK).results(t)
			if len(rs) != 1 || rs[0]["pulp_href"] != gh || !reflect.DeepEqual(keysOf(rs[0]), guardKeys) {
				t.Errorf("%s: %v", list, rs)
			}
		}
		if got := e.get(distributions + "?fields=content_guard").results(t); len(got) != 2 || got[0]["content_guard"] != gh {
			t.Errorf("list: %v", got)
		}

		t.Run("deleting a distribution keeps the guard", func(t *testing.T) {
			e.waitTaskOK(e.del(href(d2)).taskHref(t))
			e.get(gh).expect(t, http.StatusOK)
		})

		t.Run("a pull-through child has no guard until an update gives it one", func(t *testing.T) {
			// The cache creates children directly (as pulp_container's get_or_create does,
			// bypassing the serializer): no guard.
			now := models.Now()
			child := models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType,
				PulpCreated: now, PulpLastUpdated: now, Name: "pt/lib/alpine", BasePath: "pt/lib/alpine",
				PulpLabels: models.Labels{}, PullThroughID: &[]string{idOf(href(pt))}[0]}
			if err := e.db.Create(&child).Error; err != nil {
				t.Fatal(err)
			}
			ch := child.Href()
			c := e.get(ch).expect(t, http.StatusOK).obj(t)
			if c["content_guard"] != nil || c["content_guard_prn"] != nil {
				t.Errorf("child guard %v %v", c["content_guard"], c["content_guard_prn"])
			}
			// pulp_container's validate() adds the default guard on any update.
			e.waitTaskOK(e.patch(ch, map[string]any{"description": "x"}).taskHref(t))
			if c := e.get(ch).obj(t); c["content_guard"] != gh || c["description"] != "x" {
				t.Errorf("after PATCH: guard %v description %v", c["content_guard"], c["description"])
			}
		})

		t.Run("content_guard set to another guard, kept by later updates", func(t *testing.T) {
			other := e.create(redirectGuards, map[string]any{"name": "mine", "description": "my guard"})
			if !reflect.DeepEqual(keysOf(other), guardKeys) || other["description"] != "my guard" {
				t.Fatalf("created guard %v", other)
			}
			e.waitTaskOK(e.patch(href(d), map[string]any{"content_guard": href(other)}).taskHref(t))
			got := e.get(href(d)).obj(t)
			if got["content_guard"] != href(other) || got["content_guard_prn"] != other["prn"] {
				t.Errorf("after PATCH: %v %v", got["content_guard"], got["content_guard_prn"])
			}
			e.waitTaskOK(e.patch(href(d), map[string]any{"description": "y"}).taskHref(t))
			if got := e.get(href(d)).obj(t); got["content_guard"] != href(other) {
				t.Errorf("after an unrelated PATCH: %v", got["content_guard"])
			}
			// By PRN, back to the default one; a create may name a guard too.
			e.waitTaskOK(e.patch(href(d), map[string]any{"content_guard": wantPRN}).taskHref(t))
			if got := e.get(href(d)).obj(t); got["content_guard"] != gh {
				t.Errorf("after PATCH by PRN: %v", got["content_guard"])
			}
			d3 := e.createAsync(distributions, map[string]any{"name": "c", "base_path": "c", "content_guard": href(other)})
			if d3["content_guard"] != href(other) {
				t.Errorf("created with a guard: %v", d3["content_guard"])
			}
			if n := e.get(distributions + "?fields=name").obj(t)["count"]; n != float64(3) {
				t.Errorf("%v distributions", n)
			}

			t.Run("deleting a guard leaves its distributions without one", func(t *testing.T) {
				e.del(href(other)).expect(t, http.StatusNoContent)
				e.get(href(other)).bodyIs(t, http.StatusNotFound,
					`{"detail": "No ContentRedirectContentGuard matches the given query."}`)
				if got := e.get(href(d3)).obj(t); got["content_guard"] != nil || got["content_guard_prn"] != nil {
					t.Errorf("after deleting its guard: %v", got["content_guard"])
				}
			})
		})

		t.Run("content_guard errors", func(t *testing.T) {
			unknown := redirectGuards + "01a20ff1-d36b-71eb-9924-3e2ff9997aaa/"
			cases := []struct {
				body map[string]any
				want string
			}{
				{map[string]any{"content_guard": nil}, `{"content_guard": ["This field may not be null."]}`},
				{map[string]any{"content_guard": ""}, `{"content_guard": ["This field may not be null."]}`},
				{map[string]any{"content_guard": unknown}, `{"content_guard": ["Invalid hyperlink - Object does not exist."]}`},
				{map[string]any{"content_guard": "/pulp/api/v3/contentguards/core/rbac/x/"}, `{"content_guard": ["Invalid hyperlink - No URL match."]}`},
				{map[string]any{"content_guard": href(d)}, `{"content_guard": ["Invalid hyperlink - Incorrect URL match."]}`},
				{map[string]any{"content_guard": 5}, `{"content_guard": ["Incorrect type. Expected URL string, received int."]}`},
			}
			for _, c := range cases {
				e.patch(href(d), c.body).bodyIs(t, http.StatusBadRequest, c.want)
				body := map[string]any{"name": "e", "base_path": "e"}
				for k, v := range c.body {
					body[k] = v
				}
				e.post(distributions, body).bodyIs(t, http.StatusBadRequest, c.want)
				e.post(ptDistribution, map[string]any{"name": "pe", "base_path": "pe", "remote": href(remote),
					"content_guard": c.body["content_guard"]}).bodyIs(t, http.StatusBadRequest, c.want)
			}
		})
	})
}

// TestContentRedirectGuardEndpoints: create, read, update, delete, lists and filters of
// /contentguards/core/content_redirect/ and /contentguards/.
func TestContentRedirectGuardEndpoints(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		a := e.create(redirectGuards, map[string]any{"name": "alpha"})
		b := e.create(redirectGuards, map[string]any{"name": "beta", "description": "second"})
		if a["description"] != nil || !strings.HasPrefix(href(a), redirectGuards) ||
			a["prn"] != "prn:core.contentredirectcontentguard:"+idOf(href(a)) {
			t.Errorf("created %v", a)
		}
		if got := e.get(href(b)).expect(t, http.StatusOK).obj(t); !reflect.DeepEqual(got, b) {
			t.Errorf("read %v, created %v", got, b)
		}

		for _, c := range []struct {
			body any
			want string
		}{
			{map[string]any{}, `{"name": ["This field is required."]}`},
			{map[string]any{"name": "alpha"}, `{"name": ["This field must be unique."]}`},
			{map[string]any{"name": ""}, `{"name": ["This field may not be blank."]}`},
			{map[string]any{"name": "x", "description": ""}, `{"description": ["This field may not be blank."]}`},
			{map[string]any{"name": "x", "bogus": 1}, `{"bogus": ["Unexpected field"]}`},
		} {
			e.post(redirectGuards, c.body).bodyIs(t, http.StatusBadRequest, c.want)
		}

		got := e.patch(href(a), map[string]any{"description": "first"}).expect(t, http.StatusOK).obj(t)
		if got["description"] != "first" || got["name"] != "alpha" {
			t.Errorf("PATCH: %v", got)
		}
		e.put(href(a), map[string]any{"description": "x"}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field is required."]}`)
		e.put(href(a), map[string]any{"name": "beta"}).bodyIs(t, http.StatusBadRequest, `{"name": ["This field must be unique."]}`)
		got = e.put(href(a), map[string]any{"name": "gamma"}).expect(t, http.StatusOK).obj(t)
		if got["name"] != "gamma" || got["description"] != "first" {
			t.Errorf("PUT: %v", got)
		}

		for _, c := range []struct {
			query string
			want  []string
		}{
			{"", []string{"beta", "gamma"}},
			{"ordering=name", []string{"beta", "gamma"}},
			{"ordering=-name", []string{"gamma", "beta"}},
			{"ordering=-description", []string{"beta", "gamma"}},
			{"name=beta", []string{"beta"}},
			{"name__startswith=ga", []string{"gamma"}},
			{"name__icontains=ET", []string{"beta"}},
			{"pulp_href__in=" + href(a), []string{"gamma"}},
			{"prn__in=" + url.QueryEscape(b["prn"].(string)), []string{"beta"}},
			{"pulp_id__in=" + idOf(href(b)), []string{"beta"}},
		} {
			for _, list := range []string{redirectGuards, guards} {
				q := list + "?ordering=name&" + c.query
				if strings.HasPrefix(c.query, "ordering") {
					q = list + "?" + c.query
				}
				if got := e.get(q).expect(t, http.StatusOK).names(t); !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s: %v, want %v", q, got, c.want)
				}
			}
		}
		if got := e.get(guards + "?pulp_type=core.content_redirect&ordering=name").names(t); !reflect.DeepEqual(got, []string{"beta", "gamma"}) {
			t.Errorf("pulp_type filter: %v", got)
		}
		e.get(redirectGuards+"?pulp_label_select=a").bodyIs(t, http.StatusBadRequest, `{"errors": ["Invalid Filter: 'pulp_label_select'"]}`)
		e.get(redirectGuards+"?ordering=bogus").bodyIs(t, http.StatusBadRequest,
			`{"ordering": ["Select a valid choice. bogus is not one of the available choices."]}`)

		e.del(href(b)).expect(t, http.StatusNoContent)
		e.del(href(b)).bodyIs(t, http.StatusNotFound, `{"detail": "No ContentRedirectContentGuard matches the given query."}`)
		e.get(redirectGuards+"not-a-uuid/").bodyIs(t, http.StatusNotFound, `{"detail": "Not found."}`)
	})
}
