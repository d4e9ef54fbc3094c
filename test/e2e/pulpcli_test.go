package e2e_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
)

// Secrets given to pulp-cli; neither may appear in any output, nor in the server's log.
const (
	remotePassword  = "pw-e2e-Zq7uX1cV"
	remotePassword2 = "pw-e2e-Hd4kR9sL"
)

// pulpCLI runs pulp-cli in one engine's home and keeps every output, for the secret check.
type pulpCLI struct {
	e       *env
	outputs []string
}

// run runs pulp with args and records its output; it never fails t.
func (p *pulpCLI) run(t *testing.T, args ...string) harness.Result {
	t.Helper()
	r := p.e.home.Run(t, "pulp", args...)
	p.outputs = append(p.outputs, r.Stdout, r.Stderr)
	return r
}

// must runs pulp with args and fails t unless it exits 0.
func (p *pulpCLI) must(t *testing.T, args ...string) harness.Result {
	t.Helper()
	return p.run(t, args...).Must(t)
}

// fails runs pulp with args and fails t when it exits 0.
func (p *pulpCLI) fails(t *testing.T, args ...string) harness.Result {
	t.Helper()
	r := p.run(t, args...)
	if r.Code == 0 {
		t.Fatalf("%s: exit 0, want a failure\nstdout:\n%s\nstderr:\n%s", r.Command, r.Stdout, r.Stderr)
	}
	return r
}

// object runs pulp with args (must succeed) and decodes its output as a JSON object.
func (p *pulpCLI) object(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := p.must(t, args...)
	m, ok := decodeJSON(t, r.Command, r.Stdout).(map[string]any)
	if !ok {
		t.Fatalf("%s: output is not a JSON object:\n%s", r.Command, r.Stdout)
	}
	return m
}

// list runs pulp with args (must succeed) and decodes its output as a JSON array of objects.
func (p *pulpCLI) list(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	r := p.must(t, args...)
	var out []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("%s: output is not a JSON array of objects (%v):\n%s", r.Command, err, r.Stdout)
	}
	return out
}

// names returns the name fields of objects.
func names(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o["name"].(string))
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startedTask returns the href in pulp-cli's "Started background task <href>" on stderr.
func startedTask(t *testing.T, r harness.Result) string {
	t.Helper()
	m := regexp.MustCompile(`Started background task (/pulp/api/v3/tasks/[0-9a-f-]+/)`).FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("%s: no \"Started background task\" on stderr:\n%s", r.Command, r.Stderr)
	}
	return m[1]
}

// TestPulpCLI drives the server with pulp-cli as a user (and pulp-cli's own test scripts)
// would: status and Correlation-ID, then the life cycle of each container object, tasks, and
// pull-through objects through pulp debug openapi call.
func TestPulpCLI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		p := &pulpCLI{e: e}
		t.Cleanup(func() {
			all := strings.Join(p.outputs, "\n")
			if log, err := os.ReadFile(e.srv.LogFile); err == nil {
				all += string(log)
			}
			for _, secret := range []string{remotePassword, remotePassword2} {
				if strings.Contains(all, secret) {
					t.Errorf("the remote's password %q appears in pulp-cli's output or the server's log", secret)
				}
			}
		})

		t.Run("status", func(t *testing.T) {
			status := p.object(t, "--refresh-api", "status")
			wantFields(t, "status", status, map[string]any{
				"database_connection": map[string]any{"connected": true},
			})
			p.must(t, "debug", "has-plugin", "--name", "container")
			if r := p.run(t, "debug", "has-plugin", "--name", "no-such-plugin"); r.Code == 0 {
				t.Errorf("has-plugin --name no-such-plugin exited 0")
			}
		})

		t.Run("correlation-id", func(t *testing.T) {
			const cid = "deadbeefdeadbeefdeadbeefdeadbeef"
			r := p.must(t, "--cid", cid, "-vv", "status")
			if !strings.Contains(r.Stderr, "Correlation-ID: "+cid) {
				t.Errorf("pulp -vv --cid %s status: stderr lacks \"Correlation-ID: %s\":\n%s", cid, cid, r.Stderr)
			}
			r = p.fails(t, "--cid", "deadbeefdeadbeefdeadbeefdeadxxxx", "status")
			if !strings.Contains(r.Stderr, "Correlation ID returned from server did not match") {
				t.Errorf("invalid --cid: stderr lacks the mismatch error:\n%s", r.Stderr)
			}
		})

		t.Run("remote", func(t *testing.T) {
			before := names(p.list(t, "container", "remote", "list"))
			if containsString(before, "cli-remote") {
				t.Fatalf("cli-remote exists before it was created: %v", before)
			}
			created := p.object(t, "-vv", "container", "remote", "create", "--name", "cli-remote",
				"--url", "https://registry.example.invalid", "--upstream-name", "library/hello",
				"--password", remotePassword)
			href, _ := created["pulp_href"].(string)
			if !strings.HasPrefix(href, remotesPath) {
				t.Fatalf("created remote href %q", href)
			}
			wantFields(t, "created remote", created, map[string]any{
				"name": "cli-remote", "url": "https://registry.example.invalid", "upstream_name": "library/hello",
			})
			if _, ok := created["password"]; ok {
				t.Errorf("the created remote shows a password field")
			}
			if !hiddenFieldSet(created, "password") {
				t.Errorf("hidden_fields does not say password is set: %v", created["hidden_fields"])
			}

			if got := names(p.list(t, "container", "remote", "list")); !containsString(got, "cli-remote") || len(got) != len(before)+1 {
				t.Errorf("remote list after create: %v", got)
			}
			shown := p.object(t, "container", "remote", "show", "--name", "cli-remote")
			wantFields(t, "shown remote", shown, map[string]any{"pulp_href": href, "url": "https://registry.example.invalid"})
			wantFields(t, "shown by href", p.object(t, "container", "remote", "show", "--href", href),
				map[string]any{"name": "cli-remote"})

			p.must(t, "-vv", "container", "remote", "update", "--name", "cli-remote",
				"--url", "https://other.example.invalid", "--password", remotePassword2)
			shown = p.object(t, "-vv", "container", "remote", "show", "--remote", "cli-remote")
			wantFields(t, "updated remote", shown, map[string]any{"url": "https://other.example.invalid", "upstream_name": "library/hello"})
			if !hiddenFieldSet(shown, "password") {
				t.Errorf("after the update hidden_fields does not say password is set: %v", shown["hidden_fields"])
			}
			// The update task's result and the task list carry the remote too.
			p.must(t, "task", "list", "--limit", "5")
			raw := e.api.do(t, "GET", href, nil)
			for _, secret := range []string{remotePassword, remotePassword2} {
				if strings.Contains(string(raw.body), secret) {
					t.Errorf("GET %s shows the password", href)
				}
			}

			p.must(t, "container", "remote", "update", "--name", "cli-remote", "--password", "")
			if hiddenFieldSet(p.object(t, "container", "remote", "show", "--name", "cli-remote"), "password") {
				t.Errorf("--password \"\" did not clear the password")
			}

			r := p.must(t, "container", "remote", "destroy", "--name", "cli-remote")
			startedTask(t, r)
			if got := e.api.find(t, remotesPath, "cli-remote"); len(got) != 0 {
				t.Errorf("remotes named cli-remote after destroy: %v", got)
			}
			p.fails(t, "container", "remote", "show", "--name", "cli-remote")
		})

		t.Run("repository", func(t *testing.T) {
			created := p.object(t, "container", "repository", "create", "--name", "cli-repo", "--description", "made by pulp-cli")
			wantFields(t, "created repository", created, map[string]any{"name": "cli-repo", "description": "made by pulp-cli"})
			href := created["pulp_href"].(string)
			if got := created["latest_version_href"]; got != href+"versions/0/" {
				t.Errorf("latest_version_href = %v, want %sversions/0/", got, href)
			}
			if got := names(p.list(t, "container", "repository", "list")); !containsString(got, "cli-repo") {
				t.Errorf("repository list: %v", got)
			}
			wantFields(t, "shown repository", p.object(t, "container", "repository", "show", "--repository", "cli-repo"),
				map[string]any{"pulp_href": href, "description": "made by pulp-cli"})

			p.must(t, "container", "repository", "update", "--repository", "cli-repo", "--description", "")
			r := p.must(t, "container", "repository", "show", "--name", "cli-repo")
			// pulp-cli's test_repository.sh greps for exactly this.
			if !strings.Contains(r.Stdout, `"description": null`) {
				t.Errorf("show after --description \"\": output lacks \"description\": null:\n%s", r.Stdout)
			}

			versions := p.list(t, "container", "repository", "version", "list", "--repository", "cli-repo")
			if len(versions) != 1 || versions[0]["number"] != 0.0 || versions[0]["pulp_href"] != href+"versions/0/" {
				t.Errorf("version list = %v, want version 0 only", versions)
			}
			wantFields(t, "version 0", p.object(t, "container", "repository", "version", "show", "--repository", "cli-repo", "--version", "0"),
				map[string]any{"number": 0.0, "repository": href})

			p.must(t, "container", "repository", "destroy", "--repository", "cli-repo")
			if got := e.api.find(t, reposPath, "cli-repo"); len(got) != 0 {
				t.Errorf("repositories named cli-repo after destroy: %v", got)
			}
		})

		t.Run("distribution", func(t *testing.T) {
			repo := p.object(t, "container", "repository", "create", "--name", "cli-dist-repo")
			repoHref := repo["pulp_href"].(string)
			version0 := repoHref + "versions/0/"

			r := p.must(t, "container", "distribution", "create", "--name", "cli-dist",
				"--base-path", "cli/dist", "--repository", "cli-dist-repo")
			startedTask(t, r)
			dist := decodeJSON(t, r.Command, r.Stdout).(map[string]any)
			wantFields(t, "created distribution", dist, map[string]any{
				"name": "cli-dist", "base_path": "cli/dist", "repository": repoHref, "repository_version": nil,
			})
			distVer := p.object(t, "container", "distribution", "create", "--name", "cli-dist-ver",
				"--base-path", "cli/dist-ver", "--repository", "cli-dist-repo", "--version", "0")
			wantFields(t, "created distribution with --version 0", distVer, map[string]any{
				"repository": nil, "repository_version": version0,
			})
			if v, _ := distVer["repository_version"].(string); !strings.HasSuffix(v, "/versions/0/") {
				t.Errorf("repository_version %q does not end with /versions/0/", v)
			}

			if got := names(p.list(t, "container", "distribution", "list")); !containsString(got, "cli-dist") || !containsString(got, "cli-dist-ver") {
				t.Errorf("distribution list: %v", got)
			}
			shown := p.object(t, "container", "distribution", "show", "--distribution", "cli-dist")
			wantFields(t, "shown distribution", shown, map[string]any{
				"pulp_href": dist["pulp_href"], "registry_path": e.home.Addr + "/cli/dist",
			})

			// The four updates of pulp-cli's test_distribution.sh, switching between repository and
			// repository_version and clearing both.
			hrefs := map[string]string{"cli-dist": dist["pulp_href"].(string), "cli-dist-ver": distVer["pulp_href"].(string)}
			show := func(name string) map[string]any { return e.api.get(t, hrefs[name]) }
			p.must(t, "container", "distribution", "update", "--distribution", "cli-dist", "--version", "0")
			wantFields(t, "cli-dist after --version 0", show("cli-dist"), map[string]any{"repository": nil, "repository_version": version0})
			p.must(t, "container", "distribution", "update", "--distribution", "cli-dist", "--repository", "")
			wantFields(t, "cli-dist after --repository \"\"", show("cli-dist"), map[string]any{"repository": nil, "repository_version": nil})
			p.must(t, "container", "distribution", "update", "--distribution", "cli-dist-ver", "--repository", "cli-dist-repo")
			wantFields(t, "cli-dist-ver after --repository", show("cli-dist-ver"), map[string]any{"repository": repoHref, "repository_version": nil})
			p.must(t, "container", "distribution", "update", "--distribution", "cli-dist-ver", "--repository", "")
			wantFields(t, "cli-dist-ver after --repository \"\"", show("cli-dist-ver"), map[string]any{"repository": nil, "repository_version": nil})
			p.must(t, "container", "distribution", "update", "--distribution", "cli-dist-ver", "--base-path", "cli/moved")
			wantFields(t, "cli-dist-ver after --base-path", show("cli-dist-ver"), map[string]any{"base_path": "cli/moved"})

			for _, name := range []string{"cli-dist", "cli-dist-ver"} {
				startedTask(t, p.must(t, "container", "distribution", "destroy", "--distribution", name))
			}
			if n := e.api.count(t, distsPath); n != 0 {
				t.Errorf("%d distributions after destroy, want 0", n)
			}
			p.must(t, "container", "repository", "destroy", "--repository", "cli-dist-repo")
		})

		t.Run("namespace", func(t *testing.T) {
			created := p.object(t, "container", "namespace", "create", "--name", "cli-ns")
			wantFields(t, "created namespace", created, map[string]any{"name": "cli-ns"})
			if got := names(p.list(t, "container", "namespace", "list")); !containsString(got, "cli-ns") {
				t.Errorf("namespace list: %v", got)
			}
			wantFields(t, "shown namespace", p.object(t, "container", "namespace", "show", "--namespace", "cli-ns"),
				map[string]any{"pulp_href": created["pulp_href"]})
			p.must(t, "container", "namespace", "destroy", "--namespace", "cli-ns")
			if got := e.api.find(t, namespacesPath, "cli-ns"); len(got) != 0 {
				t.Errorf("namespaces named cli-ns after destroy: %v", got)
			}
		})

		t.Run("task", func(t *testing.T) {
			r := p.must(t, "container", "repository", "create", "--name", "cli-task-repo")
			repoHref := decodeJSON(t, r.Command, r.Stdout).(map[string]any)["pulp_href"].(string)
			r = p.must(t, "container", "repository", "update", "--repository", "cli-task-repo", "--description", "d")
			href := startedTask(t, r)

			tasks := p.list(t, "task", "list")
			if len(tasks) == 0 {
				t.Fatal("task list is empty")
			}
			completed := p.list(t, "task", "list", "--state", "completed")
			if len(completed) == 0 {
				t.Error("task list --state completed is empty")
			}
			for _, task := range completed {
				if task["state"] != "completed" {
					t.Errorf("task list --state completed shows %v in state %v", task["pulp_href"], task["state"])
				}
			}
			shown := p.object(t, "task", "show", "--href", href)
			wantFields(t, "task show", shown, map[string]any{"pulp_href": href, "state": "completed"})
			if _, ok := shown["result"]; !ok {
				t.Errorf("task has no result key: %v", shown)
			}
			uuid := strings.TrimSuffix(strings.TrimPrefix(href, tasksPath), "/")
			wantFields(t, "task show --uuid", p.object(t, "task", "show", "--uuid", uuid), map[string]any{"pulp_href": href})

			byRepo := p.list(t, "container", "repository", "task", "list", "--repository", "cli-task-repo")
			found := false
			for _, task := range byRepo {
				found = found || task["pulp_href"] == href
			}
			if !found {
				t.Errorf("repository task list for %s lacks %s: %v", repoHref, href, byRepo)
			}

			summary := p.object(t, "task", "summary")
			if n, _ := summary["completed"].(float64); n < 1 {
				t.Errorf("task summary: completed = %v, want at least 1: %v", summary["completed"], summary)
			}
			p.must(t, "container", "repository", "destroy", "--repository", "cli-task-repo")
		})

		t.Run("pull-through", func(t *testing.T) {
			remote := p.object(t, "debug", "openapi", "call", "--id", "remotes_container_pull_through_create",
				"--body", `{"name":"cli-cache","url":"https://registry.example.invalid"}`)
			remoteHref, _ := remote["pulp_href"].(string)
			if !strings.HasPrefix(remoteHref, ptRemotesPath) {
				t.Fatalf("pull-through remote href %q", remoteHref)
			}
			wantFields(t, "pull-through remote", remote, map[string]any{
				"name": "cli-cache", "url": "https://registry.example.invalid", "policy": "on_demand",
			})

			body, _ := json.Marshal(map[string]string{"name": "cli-cache", "base_path": "cli-cache", "remote": remoteHref})
			r := p.must(t, "debug", "openapi", "call", "--id", "distributions_container_pull_through_create", "--body", string(body))
			startedTask(t, r)
			dist := decodeJSON(t, r.Command, r.Stdout).(map[string]any)
			wantFields(t, "pull-through distribution", dist, map[string]any{
				"name": "cli-cache", "base_path": "cli-cache", "remote": remoteHref,
			})

			page := p.object(t, "debug", "openapi", "call", "--id", "distributions_container_pull_through_list")
			var listed []string
			for _, d := range page["results"].([]any) {
				listed = append(listed, d.(map[string]any)["name"].(string))
			}
			if !containsString(listed, "cli-cache") {
				t.Errorf("distributions_container_pull_through_list: %v", listed)
			}
			page = p.object(t, "debug", "openapi", "call", "--id", "remotes_container_pull_through_list",
				"--parameter", "name=cli-cache")
			if page["count"] != 1.0 {
				t.Errorf("remotes_container_pull_through_list?name=cli-cache: count %v", page["count"])
			}
		})
	})
}

// hiddenFieldSet says whether obj's hidden_fields mark name as set.
func hiddenFieldSet(obj map[string]any, name string) bool {
	fields, _ := obj["hidden_fields"].([]any)
	for _, f := range fields {
		if m, ok := f.(map[string]any); ok && m["name"] == name {
			return m["is_set"] == true
		}
	}
	return false
}
