package reposync

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestSyncBadInput checks Pulp's answers to syncs that cannot start: each is refused with
// Pulp's status and body, and dispatches no task.
func TestSyncBadInput(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		if _, err := hub.PushSmall(ctx, "library/app", "1"); err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		repo := e.createRepo(t, "plain", nil)
		remote := e.createRemote(t, "app", hub.URL(), "library/app", nil)
		e.api.CreatePullThrough(t, "docker-cache", "docker-cache", hub.URL(), nil, nil)
		ptRemote := client.Str(e.api.List(t, "/pulp/api/v3/remotes/container/pull-through/", nil)[0], "pulp_href")
		// A pull creates the cache's read-only repository of the image.
		if _, _, _, err := e.reg.Manifest(ctx, "docker-cache/library/app", "1"); err != nil {
			t.Fatal(err)
		}
		var cacheRepo string
		client.Poll(t, "the pull-through repository", func() (bool, string) {
			l := e.api.List(t, "/pulp/api/v3/repositories/container/container/", map[string][]string{"name": {"docker-cache/library/app"}})
			if len(l) == 1 {
				cacheRepo = client.Str(l[0], "pulp_href")
			}
			return cacheRepo != "", ""
		})

		for _, c := range []struct {
			name   string
			path   string
			body   any
			status int
			want   map[string]any
		}{
			{"no remote anywhere", repo + "sync/", map[string]any{}, http.StatusBadRequest,
				map[string]any{"remote": []any{"This field is required since a remote is not set on the repository."}}},
			{"a pull-through remote", repo + "sync/", map[string]any{"remote": ptRemote}, http.StatusBadRequest,
				map[string]any{"remote": []any{"Invalid hyperlink - Object does not exist."}}},
			{"mirror not a boolean", repo + "sync/", map[string]any{"remote": remote, "mirror": "maybe"}, http.StatusBadRequest,
				map[string]any{"mirror": []any{"Must be a valid boolean."}}},
			{"unknown repository", "/pulp/api/v3/repositories/container/container/0190e2a5-8f3c-7c4e-a4b7-7a1d3c4e5f60/sync/",
				map[string]any{"remote": remote}, http.StatusNotFound, map[string]any{"detail": "No ContainerRepository matches the given query."}},
			{"read-only repository", cacheRepo + "sync/", map[string]any{"remote": remote}, http.StatusBadRequest,
				map[string]any{"detail": "Repository is read-only."}},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := e.taskCount(t)
				status, raw := e.api.Do(t, http.MethodPost, c.path, c.body)
				var got map[string]any
				_ = json.Unmarshal(raw, &got)
				if status != c.status || !reflect.DeepEqual(got, c.want) {
					t.Errorf("POST %s %v: %d %s, want %d %v", c.path, c.body, status, raw, c.status, c.want)
				}
				if after := e.taskCount(t); after != before {
					t.Errorf("a refused sync dispatched a task (%d tasks, then %d)", before, after)
				}
			})
		}
		if l := e.latest(t, repo); l != repo+"versions/0/" {
			t.Errorf("latest version %s after refused syncs", l)
		}

		// Tag filters that match nothing: the sync completes, fetches no manifest and no blob,
		// and creates no (empty) version.
		none := e.createRemote(t, "matches-nothing", hub.URL(), "library/app",
			map[string]any{"includes": []string{"nosuch*"}})
		hub.Reset()
		task := e.sync(t, repo, map[string]any{"remote": none})
		if got := created(task); len(got) != 0 {
			t.Errorf("a sync whose filters match nothing created %v", got)
		}
		if l := e.latest(t, repo); l != repo+"versions/0/" {
			t.Errorf("latest version %s after a sync whose filters match nothing", l)
		}
		if c := hub.Counts(); c.ManifestGets+c.ManifestHeads+c.BlobGets != 0 {
			t.Errorf("a sync whose filters match nothing asked the upstream %+v", c)
		}
	})
}
