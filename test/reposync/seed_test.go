package reposync

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestSeedHostSynced runs "Host and Consume a Repository" as its readers do: a repository
// synced from an upstream (the document's prerequisite, made through the API), then the
// document's distribution script verbatim (wait_until_task_finished, created_resources |
// first, registry_path), then `podman login -u admin -p password` and `podman pull
// localhost:<port>/test:manifest_a`; and the same script with repository_version= in place of
// repository= (the test's variant), whose distribution keeps serving the synced version after
// the repository moves on.
func TestSeedHostSynced(t *testing.T) {
	client.NeedTools(t, "http", "jq", "podman")
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		first, err := hub.PushSmall(ctx, "library/hosted", "manifest_a")
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		home := harness.NewClientHome(t, e.srv)
		_, port, _ := net.SplitHostPort(home.Addr)
		registry := "localhost:" + port
		home.PodmanEnv(t, registry)

		remote := e.createRemote(t, "hosted", hub.URL(), "library/hosted", nil)
		repo := e.createRepo(t, "hosted", nil)
		task := e.sync(t, repo, map[string]any{"remote": remote})
		versions := created(task)
		if len(versions) != 1 || !strings.HasSuffix(versions[0], "/versions/1/") {
			t.Fatalf("sync created %v, want version 1", versions)
		}

		run := func(script, basePath string) map[string]string {
			t.Helper()
			setup := "# added by the test: the synced repository and its version\n" +
				"REPO_HREF=" + repo + "\nVERSION_HREF=" + versions[0] + "\n"
			res := home.Bash(t, setup+script+harness.ConsumeSeed+
				harness.Markers("DISTRIBUTION_HREF", "REGISTRY_PATH", "CONTAINER_TAG")).Must(t)
			v := harness.Vars(res.Stdout)
			if want := home.Addr + "/" + basePath; v["REGISTRY_PATH"] != want {
				t.Errorf("REGISTRY_PATH = %q, want %q", v["REGISTRY_PATH"], want)
			}
			return v
		}
		pull := func(basePath, tag, wantDigest string) {
			t.Helper()
			ref := registry + "/" + basePath + ":" + tag
			home.Run(t, "podman", "pull", ref).Must(t)
			out := home.Run(t, "podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}").Must(t).Stdout
			if want := ref + " " + wantDigest; !slices.Contains(strings.Split(strings.TrimSpace(out), "\n"), want) {
				t.Errorf("podman images:\n%s\nwant a line %q", out, want)
			}
		}

		v := run(harness.HostSeed, "test")
		dist := e.api.Get(t, v["DISTRIBUTION_HREF"])
		if client.Str(dist, "repository") != repo || dist["repository_version"] != nil {
			t.Errorf("distribution %v, want repository %s and no version", dist, repo)
		}
		home.Run(t, "podman", "login", "-u", "admin", "-p", "password", registry).Must(t)
		pull("test", v["CONTAINER_TAG"], first.ManifestDigest)

		// The version variant: the same script with repository_version= instead of repository=,
		// at base path test-v1.
		byVersion := strings.NewReplacer("repository=$REPO_HREF |", "repository_version=$VERSION_HREF |",
			"DIST_BASE_PATH='test'", "DIST_BASE_PATH='test-v1'").Replace(harness.HostSeed)
		if strings.Count(byVersion, "test-v1")+strings.Count(byVersion, "VERSION_HREF") != 2 {
			t.Fatal("the host script lacks the repository= argument or the base path to replace")
		}
		v = run(byVersion, "test-v1")
		dist = e.api.Get(t, v["DISTRIBUTION_HREF"])
		if client.Str(dist, "repository_version") != versions[0] || dist["repository"] != nil {
			t.Errorf("distribution %v, want repository_version %s", dist, versions[0])
		}

		// The upstream gains tags; a new sync makes version 2, which the repository's
		// distribution follows and the version's distribution does not.
		added, err := hub.PushDebianLike(ctx, "library/hosted")
		if err != nil {
			t.Fatal(err)
		}
		task = e.sync(t, repo, map[string]any{"remote": remote})
		if got := created(task); len(got) != 1 || !strings.HasSuffix(got[0], "/versions/2/") {
			t.Fatalf("second sync created %v, want version 2", got)
		}
		pull("test", added[0].Tag, added[0].ManifestDigest)
		pull("test-v1", "manifest_a", first.ManifestDigest)
		resp, err := e.reg.Request(ctx, http.MethodHead, "/v2/test-v1/manifests/"+added[0].Tag,
			http.Header{"Accept": {e.reg.ManifestAccept()}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("HEAD of tag %s on the version-1 distribution: %d, want 404", added[0].Tag, resp.StatusCode)
		}
	})
}
