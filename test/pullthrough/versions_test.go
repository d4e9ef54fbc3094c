package pullthrough

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestDebianTags follows the note of Pulp's pull-through document: pulling debian:10 creates
// the repository with tag 10 (version 1); pulling debian:11 creates version 2 holding both
// tags, and the previous version is gone. Checked through the API and through pulp-cli.
func TestDebianTags(t *testing.T) {
	client.NeedTools(t, "skopeo", "pulp")
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		debian, err := hub.PushDebianLike(ctx, "library/debian")
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng, "")
		e.createCache(t, cacheBase, cacheBase, hub.URL(), nil, nil)
		const path = "docker-cache/library/debian"

		for i, img := range debian {
			mustSkopeoCopy(t, e, path+":"+img.Tag, img)
			repo := e.api.waitRecorded(t, path, i+1)

			versions := e.api.List(t, client.Str(repo, "versions_href"), nil)
			if len(versions) != 1 || client.Str(versions[0], "pulp_href") != client.Str(repo, "latest_version_href") {
				var hrefs []string
				for _, v := range versions {
					hrefs = append(hrefs, client.Str(v, "pulp_href"))
				}
				t.Errorf("after pulling %s: versions %v, want only %s (retain_repo_versions 1)", img.Ref(), hrefs, repo["latest_version_href"])
			}
			var wantTags []string
			for _, d := range debian[:i+1] {
				wantTags = append(wantTags, d.Tag)
			}
			latest := client.Str(repo, "latest_version_href")
			tags, tagged := e.api.tagsOf(t, latest)
			if !slices.Equal(tags, wantTags) {
				t.Errorf("after pulling %s: tags in %s %v, want %v", img.Ref(), latest, tags, wantTags)
			}
			for _, d := range debian[:i+1] {
				if href := tagged[d.Tag]; href != "" {
					if got := client.Str(e.api.Get(t, href), "digest"); got != d.ManifestDigest {
						t.Errorf("tag %s points at %s, want %s", d.Tag, got, d.ManifestDigest)
					}
				}
			}
		}

		// The same through pulp-cli.
		out := e.home.Run(t, "pulp", "container", "repository", "version", "list", "--repository", path).Must(t).Stdout
		var versions []map[string]any
		if err := json.Unmarshal([]byte(out), &versions); err != nil {
			t.Fatalf("pulp container repository version list: %v\n%s", err, out)
		}
		if len(versions) != 1 || versions[0]["number"] != 2.0 {
			t.Fatalf("pulp container repository version list: %s\nwant one version, number 2", out)
		}
		latest := client.Str(versions[0], "pulp_href")
		for _, args := range [][]string{
			{"--repository-version", latest},
			{"--distribution", path},
		} {
			out = e.home.Run(t, "pulp", append([]string{"container", "content", "-t", "tag", "list"}, args...)...).Must(t).Stdout
			var tags []map[string]any
			if err := json.Unmarshal([]byte(out), &tags); err != nil {
				t.Fatalf("pulp container content -t tag list %v: %v\n%s", args, err, out)
			}
			var names []string
			for _, tg := range tags {
				names = append(names, client.Str(tg, "name"))
			}
			sort.Strings(names)
			if !slices.Equal(names, []string{"10", "11"}) {
				t.Errorf("pulp container content -t tag list %v: tags %v, want [10 11]\n%s", args, names, out)
			}
		}
	})
}
