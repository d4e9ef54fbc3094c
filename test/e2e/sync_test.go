package e2e_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
)

// TestPulpCLISync syncs a repository as a pulp-cli user would (remote create, repository
// create with the remote, repository sync, distribution create), then copies every tag out of
// the ordinary distribution with skopeo, checking each digest against the upstream's.
func TestPulpCLISync(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		needTools(t, "skopeo")
		hub := client.StartHub(t)
		ctx := client.Context(t)
		small, err := hub.PushSmall(ctx, "library/app", "1")
		if err != nil {
			t.Fatal(err)
		}
		idx, err := hub.PushIndex(ctx, "library/app", "multi")
		if err != nil {
			t.Fatal(err)
		}
		p := &pulpCLI{e: e}
		p.must(t, "--refresh-api", "status")
		p.must(t, "container", "remote", "create", "--name", "cli-sync", "--url", hub.URL(), "--upstream-name", "library/app")
		p.must(t, "container", "repository", "create", "--name", "cli-sync", "--remote", "cli-sync")
		r := p.must(t, "-v", "container", "repository", "sync", "--name", "cli-sync")
		t.Logf("pulp container repository sync: %s", strings.TrimSpace(r.Stderr))
		versions := p.list(t, "container", "repository", "version", "list", "--repository", "cli-sync")
		if len(versions) != 2 {
			t.Fatalf("after the sync the repository has %d versions, want 2: %v", len(versions), versions)
		}
		p.must(t, "container", "distribution", "create", "--name", "cli-sync", "--base-path", "cli-sync", "--repository", "cli-sync")

		env := e.home.PodmanEnv(t, e.srv.Addr)
		for tag, want := range map[string]string{"1": small.ManifestDigest, "multi": idx.ManifestDigest} {
			res := e.home.Run(t, "env", append(env, "skopeo", "inspect", "--raw", "--tls-verify=false",
				"--creds", "admin:password", "docker://"+e.srv.Addr+"/cli-sync:"+tag)...).Must(t)
			if got := client.Digest([]byte(res.Stdout)); got != want {
				t.Errorf("skopeo inspect --raw cli-sync:%s: digest %s, want %s", tag, got, want)
			}
			dir := t.TempDir()
			e.home.Run(t, "env", append(env, "skopeo", "copy", "--all", "--src-tls-verify=false",
				"--src-creds", "admin:password", "docker://"+e.srv.Addr+"/cli-sync:"+tag, "dir:"+dir)...).Must(t)
		}
		// An unchanged upstream: the sync completes without a version.
		p.must(t, "container", "repository", "sync", "--name", "cli-sync")
		if n := len(p.list(t, "container", "repository", "version", "list", "--repository", "cli-sync")); n != 2 {
			t.Errorf("after an unchanged re-sync the repository has %d versions, want 2", n)
		}
	})
}

// TestPulpCLISyncFiltersAndPolicy drives the rest of pulp-cli's sync workflow: a remote with
// --include-tags, --exclude-tags and --policy on_demand, a repository without a remote (sync
// without --remote is refused by pulp-cli, sync --remote works), a distribution of a fixed
// version (--version) beside one of the repository, and what each serves after the upstream
// gains a tag and the repository is synced again.
func TestPulpCLISyncFiltersAndPolicy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		needTools(t, "skopeo")
		hub := client.StartHub(t)
		ctx := client.Context(t)
		small, err := hub.PushSmall(ctx, "library/app", "1")
		if err != nil {
			t.Fatal(err)
		}
		debian, err := hub.PushDebianLike(ctx, "library/app") // tags "10" and "11"
		if err != nil {
			t.Fatal(err)
		}
		p := &pulpCLI{e: e}
		p.must(t, "--refresh-api", "status")
		remote := p.object(t, "container", "remote", "create", "--name", "filtered", "--url", hub.URL(),
			"--upstream-name", "library/app", "--include-tags", `["1*"]`, "--exclude-tags", `["11"]`, "--policy", "on_demand")
		// pulp_container 2.29 keeps --include-tags/--exclude-tags as includes/excludes.
		wantFields(t, "remote", remote, map[string]any{"policy": "on_demand",
			"includes": []any{"1*"}, "excludes": []any{"11"}})
		p.must(t, "container", "repository", "create", "--name", "filtered")
		r := p.fails(t, "container", "repository", "sync", "--name", "filtered")
		if !strings.Contains(r.Stderr, "does not have a default remote") {
			t.Errorf("sync without a remote: %s", r.Stderr)
		}
		p.must(t, "container", "repository", "sync", "--name", "filtered", "--remote", "filtered")
		tags := p.list(t, "container", "content", "-t", "tag", "list", "--repository-version",
			reposHref(t, p, "filtered")+"versions/1/")
		var names []string
		for _, tg := range tags {
			names = append(names, client.Str(tg, "name"))
		}
		sort.Strings(names)
		if strings.Join(names, ",") != "1,10" {
			t.Errorf("version 1 tags %v, want 1 and 10 (1* minus 11)", names)
		}
		// on_demand: the layers were not fetched by the sync.
		for _, b := range append(small.Layers, debian[0].Layers...) {
			if n := hub.BlobGets(b.Digest); n != 0 {
				t.Errorf("layer %s fetched %d times by an on_demand sync", b.Digest, n)
			}
		}

		p.must(t, "container", "distribution", "create", "--name", "filtered", "--base-path", "filtered", "--repository", "filtered")
		p.must(t, "container", "distribution", "create", "--name", "filtered-v1", "--base-path", "filtered-v1",
			"--repository", "filtered", "--version", "1")
		if _, err := hub.PushSmall(ctx, "library/app", "12"); err != nil {
			t.Fatal(err)
		}
		p.must(t, "container", "repository", "sync", "--name", "filtered", "--remote", "filtered")
		env := e.home.PodmanEnv(t, e.srv.Addr)
		inspect := func(path string) harness.Result {
			return e.home.Run(t, "env", append(env, "skopeo", "inspect", "--raw", "--tls-verify=false",
				"--creds", "admin:password", "docker://"+e.srv.Addr+"/"+path)...)
		}
		if res := inspect("filtered:12"); res.Code != 0 {
			t.Errorf("the repository's distribution lacks tag 12 after the second sync: %s", res.Stderr)
		}
		if res := inspect("filtered-v1:12"); res.Code == 0 {
			t.Error("the version-1 distribution serves tag 12, which came with version 2")
		}
		dir := t.TempDir()
		e.home.Run(t, "env", append(env, "skopeo", "copy", "--src-tls-verify=false", "--src-creds", "admin:password",
			"docker://"+e.srv.Addr+"/filtered-v1:10", "dir:"+dir)...).Must(t)
		for _, b := range debian[0].Layers {
			if n := hub.BlobGets(b.Digest); n != 1 {
				t.Errorf("layer %s fetched %d times by the first pull of an on_demand image, want 1", b.Digest, n)
			}
		}
	})
}

// reposHref returns the pulp_href of the container repository name, through pulp-cli.
func reposHref(t *testing.T, p *pulpCLI, name string) string {
	t.Helper()
	return client.Str(p.object(t, "container", "repository", "show", "--name", name), "pulp_href")
}
