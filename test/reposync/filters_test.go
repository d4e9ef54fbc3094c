package reposync

import (
	"maps"
	"slices"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestSyncFiltersAndMirror checks the remote's includes and excludes (excludes applied after
// includes), a sync from the repository's own remote, and mirror mode: an additive sync keeps
// what the upstream dropped, a mirror sync removes it with what only it needed.
func TestSyncFiltersAndMirror(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		imgs := pushSet(t, hub, "library/app")
		e := startServer(t, eng)

		filtered := e.createRemote(t, "filtered", hub.URL(), "library/app",
			map[string]any{"includes": []string{"1*"}, "excludes": []string{"11"}})
		repo1 := e.createRepo(t, "filtered", nil)
		hub.Reset()
		e.sync(t, repo1, map[string]any{"remote": filtered})
		if got := slices.Sorted(maps.Keys(e.tags(t, e.latest(t, repo1)))); !slices.Equal(got, []string{"1", "10"}) {
			t.Errorf("includes [1*] excludes [11]: synced tags %v, want [1 10]", got)
		}
		if n := hub.BlobGets(imgs["11"].Layers[0].Digest); n != 0 {
			t.Errorf("the excluded tag's layer was fetched %d times", n)
		}

		// The repository's own remote, when the request names none.
		all := e.createRemote(t, "all", hub.URL(), "library/app", nil)
		repo2 := e.createRepo(t, "all", map[string]any{"remote": all})
		e.sync(t, repo2, map[string]any{})
		v1 := e.latest(t, repo2)
		if got := slices.Sorted(maps.Keys(e.tags(t, v1))); !slices.Equal(got, []string{"1", "10", "11", "multi"}) {
			t.Fatalf("sync from the repository's remote: tags %v", got)
		}

		// The upstream drops "10".
		gone := imgs["10"]
		if err := hub.DeleteManifest(ctx, "library/app", gone.ManifestDigest); err != nil {
			t.Fatal(err)
		}
		task := e.sync(t, repo2, map[string]any{"mirror": false})
		if len(created(task)) != 0 || e.latest(t, repo2) != v1 {
			t.Errorf("an additive sync after the upstream dropped a tag created %v; latest %s, want %s", created(task), e.latest(t, repo2), v1)
		}
		task = e.sync(t, repo2, map[string]any{"mirror": true})
		if got, want := created(task), []string{repo2 + "versions/2/"}; !slices.Equal(got, want) {
			t.Fatalf("mirror sync created %v, want %v", got, want)
		}
		v2 := e.latest(t, repo2)
		if got := slices.Sorted(maps.Keys(e.tags(t, v2))); !slices.Equal(got, []string{"1", "11", "multi"}) {
			t.Errorf("mirror sync: tags %v, want [1 11 multi]", got)
		}
		if slices.Contains(e.digests(t, "manifests", v2), gone.ManifestDigest) {
			t.Errorf("mirror sync kept the dropped manifest %s", gone.ManifestDigest)
		}
		rest := map[string]bool{}
		for tag, im := range imgs {
			if tag != "10" {
				for _, b := range im.Blobs() {
					rest[b.Digest] = true
				}
			}
		}
		want := slices.Sorted(maps.Keys(rest))
		if got := e.digests(t, "blobs", v2); !slices.Equal(got, want) {
			t.Errorf("mirror sync: blobs %v, want %v", got, want)
		}
		// The tag, the manifest and its blobs no other image uses.
		removed := 2
		for _, b := range gone.Blobs() {
			if !rest[b.Digest] {
				removed++
			}
		}
		r := reports(task)["unassociating.content"]
		if r == nil || r["done"] != float64(removed) || client.Str(r, "message") != "Un-Associating Content" {
			t.Errorf("Un-Associating Content report %v, want done %d", r, removed)
		}
	})
}
