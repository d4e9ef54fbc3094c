package e2e_test

import (
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
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
