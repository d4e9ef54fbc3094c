package e2e_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
)

// TestSeedPullThrough runs the pull-through document's commands and checks through the API
// that they created the remote and (once its task is done) the distribution. Nothing pulls,
// so nothing goes to registry-1.docker.io.
func TestSeedPullThrough(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		res := e.home.Bash(t, harness.PullThroughSeed+harness.Markers("REMOTE_HREF")).Must(t)
		remoteHref := harness.Vars(res.Stdout)["REMOTE_HREF"]
		if !strings.HasPrefix(remoteHref, ptRemotesPath) {
			t.Fatalf("REMOTE_HREF = %q, want a pull-through remote href; output:\n%s", remoteHref, res.Stdout)
		}

		remote := e.api.get(t, remoteHref)
		wantFields(t, "remote", remote, map[string]any{
			"pulp_href": remoteHref,
			"name":      "docker-cache",
			"url":       "https://registry-1.docker.io",
			"policy":    "on_demand",
		})
		if got := e.api.find(t, ptRemotesPath, "docker-cache"); len(got) != 1 {
			t.Errorf("pull-through remotes named docker-cache: %d, want 1", len(got))
		}

		// The second command printed the 202 body: exactly {"task": href}.
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		var accepted map[string]any
		for _, l := range lines {
			if strings.HasPrefix(l, "{") {
				accepted, _ = decodeJSON(t, "distribution create", l).(map[string]any)
			}
		}
		taskHref, _ := accepted["task"].(string)
		if len(accepted) != 1 || !strings.HasPrefix(taskHref, tasksPath) {
			t.Fatalf("distribution create printed %v, want {\"task\": href}; output:\n%s", accepted, res.Stdout)
		}
		task := e.api.waitTask(t, taskHref)
		distHref := createdResource(t, task)
		if !strings.HasPrefix(distHref, ptDistsPath) {
			t.Fatalf("created %q, want a pull-through distribution", distHref)
		}
		dist := e.api.get(t, distHref)
		wantFields(t, "distribution", dist, map[string]any{
			"pulp_href": distHref,
			"name":      "docker-cache",
			"base_path": "docker-cache",
			"remote":    remoteHref,
		})
		if got := e.api.find(t, ptDistsPath, "docker-cache"); len(got) != 1 {
			t.Errorf("pull-through distributions named docker-cache: %d, want 1", len(got))
		}
	})
}

// TestSeedHostRepository creates a repository with httpie, then runs the hosting document's
// script verbatim and the first lines of its consuming script, and checks the distribution.
func TestSeedHostRepository(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		setup := `# added by the test: a repository to host, as "Synchronize a Repository" would leave
REPO_HREF=$(http POST $BASE_ADDR/pulp/api/v3/repositories/container/container/ name=seed-repo | jq -r '.pulp_href')
DIST_BASE_PATH=test
`
		res := e.home.Bash(t, setup+harness.HostSeed+harness.ConsumeSeed+
			harness.Markers("REPO_HREF", "DIST_NAME", "TASK_HREF", "DISTRIBUTION_HREF", "REGISTRY_PATH")).Must(t)
		v := harness.Vars(res.Stdout)

		repoHref := v["REPO_HREF"]
		if !strings.HasPrefix(repoHref, reposPath) {
			t.Fatalf("REPO_HREF = %q; output:\n%s", repoHref, res.Stdout)
		}
		if !regexp.MustCompile(`^[a-z]{5}$`).MatchString(v["DIST_NAME"]) {
			t.Errorf("DIST_NAME = %q, want five letters", v["DIST_NAME"])
		}
		for _, want := range []string{
			"Creating distribution   (name=" + v["DIST_NAME"] + ", base_path=test repository=" + repoHref + ").",
			"Polling the task until it has reached a final state.",
			e.home.BaseURL + v["TASK_HREF"] + " complete.",
			"Setting DISTRIBUTION_HREF from the completed task.",
			"Inspecting Distribution.",
			"Setting REGISTRY_PATH, which can be used directly with the Docker Client.",
			"Next we pull and run the image from pulp",
		} {
			if !strings.Contains(res.Stdout, want+"\n") {
				t.Errorf("output lacks the line %q:\n%s", want, res.Stdout)
			}
		}

		distHref := v["DISTRIBUTION_HREF"]
		if !strings.HasPrefix(distHref, distsPath) {
			t.Fatalf("DISTRIBUTION_HREF = %q; output:\n%s", distHref, res.Stdout)
		}
		wantPath := e.home.Addr + "/test"
		if v["REGISTRY_PATH"] != wantPath {
			t.Errorf("REGISTRY_PATH = %q, want %q (the Host httpie sent)", v["REGISTRY_PATH"], wantPath)
		}
		if !strings.Contains(res.Stdout, wantPath+":manifest_a\n") {
			t.Errorf("output lacks %s:manifest_a", wantPath)
		}

		// "Inspecting Distribution." printed the object with the fields the document shows.
		var shown map[string]any
		for _, l := range strings.Split(res.Stdout, "\n") {
			if strings.HasPrefix(l, "{") && strings.Contains(l, `"registry_path"`) {
				shown, _ = decodeJSON(t, "inspect", l).(map[string]any)
			}
		}
		if shown == nil {
			t.Fatalf("the script printed no distribution:\n%s", res.Stdout)
		}
		want := map[string]any{
			"pulp_href":          distHref,
			"base_path":          "test",
			"name":               v["DIST_NAME"],
			"registry_path":      wantPath,
			"repository":         repoHref,
			"repository_version": nil,
		}
		wantFields(t, "printed distribution", shown, want)
		if _, ok := shown["pulp_created"]; !ok {
			t.Errorf("printed distribution lacks pulp_created: %v", shown)
		}
		wantFields(t, "distribution", e.api.get(t, distHref), want)
		// pulp_container attaches its shared "content redirect" guard to every distribution.
		for what, d := range map[string]map[string]any{"printed distribution": shown, "distribution": e.api.get(t, distHref)} {
			if g, _ := d["content_guard"].(string); !strings.HasPrefix(g, "/pulp/api/v3/contentguards/core/content_redirect/") {
				t.Errorf("%s content_guard = %v, want the content redirect guard", what, d["content_guard"])
			}
		}

		task := e.api.get(t, v["TASK_HREF"])
		wantFields(t, "task", task, map[string]any{"state": "completed", "created_resources": []any{distHref}})
		if got := e.api.expect(t, http.MethodGet, distsPath+"?base_path=test", nil, http.StatusOK)["count"]; got != 1.0 {
			t.Errorf("distributions with base_path test: %v, want 1", got)
		}
	})
}
