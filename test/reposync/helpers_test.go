package reposync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// env is one running server with its clients.
type env struct {
	srv *harness.Server
	api *client.API
	reg *client.Registry
}

// startServer runs bin/pulpgo serve on engine e.
func startServer(t testing.TB, e testenv.Engine, args ...string) *env {
	t.Helper()
	srv := harness.Start(t, harness.Options{Engine: e, Args: args, Binary: os.Getenv("PULPGO_TEST_BINARY")})
	return &env{
		srv: srv,
		api: &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()},
		reg: &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()},
	}
}

// post POSTs body to path and decodes the answer, failing t unless the status is want.
func (e *env) post(t testing.TB, path string, body any, want int) map[string]any {
	t.Helper()
	status, raw := e.api.Do(t, http.MethodPost, path, body)
	if status != want {
		t.Fatalf("POST %s %v: %d %s, want %d", path, body, status, raw, want)
	}
	return client.DecodeObject(t, raw)
}

// createRemote creates a container remote for upstream name of the upstream at upstreamURL,
// with extra fields (policy, includes...), and returns its href.
func (e *env) createRemote(t testing.TB, name, upstreamURL, upstreamName string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name, "url": upstreamURL, "upstream_name": upstreamName}
	for k, v := range extra {
		body[k] = v
	}
	return client.Str(e.post(t, "/pulp/api/v3/remotes/container/container/", body, http.StatusCreated), "pulp_href")
}

// createRepo creates a container repository (with extra fields) and returns its href.
func (e *env) createRepo(t testing.TB, name string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range extra {
		body[k] = v
	}
	return client.Str(e.post(t, "/pulp/api/v3/repositories/container/container/", body, http.StatusCreated), "pulp_href")
}

// distribute creates an ordinary distribution of repoHref at basePath.
func (e *env) distribute(t testing.TB, basePath, repoHref string) {
	t.Helper()
	task := e.post(t, "/pulp/api/v3/distributions/container/container/",
		map[string]any{"name": basePath, "base_path": basePath, "repository": repoHref}, http.StatusAccepted)
	e.api.WaitTask(t, client.Str(task, "task"))
}

// startSync POSTs a sync of repoHref with body and returns the task's href.
func (e *env) startSync(t testing.TB, repoHref string, body map[string]any) string {
	t.Helper()
	return client.Str(e.post(t, repoHref+"sync/", body, http.StatusAccepted), "task")
}

// sync runs a sync to completion and returns the task.
func (e *env) sync(t testing.TB, repoHref string, body map[string]any) map[string]any {
	t.Helper()
	return e.api.WaitTask(t, e.startSync(t, repoHref, body))
}

// waitFailed waits for the task at href to fail and returns it; it fails t if it completes.
func (e *env) waitFailed(t testing.TB, href string) map[string]any {
	t.Helper()
	var task map[string]any
	client.Poll(t, "task "+href+" to fail", func() (bool, string) {
		task = e.api.Get(t, href)
		switch s := client.Str(task, "state"); s {
		case "failed":
			return true, ""
		case "completed", "canceled":
			t.Fatalf("task %s %s, want failed", href, s)
		}
		return false, client.Str(task, "state")
	})
	return task
}

// created returns the task's created_resources.
func created(task map[string]any) []string {
	var out []string
	list, _ := task["created_resources"].([]any)
	for _, c := range list {
		s, _ := c.(string)
		out = append(out, s)
	}
	return out
}

// latest returns the repository's latest_version_href.
func (e *env) latest(t testing.TB, repoHref string) string {
	t.Helper()
	return client.Str(e.api.Get(t, repoHref), "latest_version_href")
}

// tags returns the tags of a repository version as name → tagged manifest's digest.
func (e *env) tags(t testing.TB, versionHref string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tag := range e.api.List(t, "/pulp/api/v3/content/container/tags/", url.Values{"repository_version": {versionHref}}) {
		m := e.api.Get(t, client.Str(tag, "tagged_manifest"))
		out[client.Str(tag, "name")] = client.Str(m, "digest")
	}
	return out
}

// digests returns the digests of the blobs or manifests ("blobs", "manifests") of a version,
// sorted.
func (e *env) digests(t testing.TB, kind, versionHref string) []string {
	t.Helper()
	var out []string
	for _, c := range e.api.List(t, "/pulp/api/v3/content/container/"+kind+"/", url.Values{"repository_version": {versionHref}}) {
		out = append(out, client.Str(c, "digest"))
	}
	sort.Strings(out)
	return out
}

// taskCount returns how many tasks the server has.
func (e *env) taskCount(t testing.TB) int {
	t.Helper()
	return len(e.api.List(t, "/pulp/api/v3/tasks/", nil))
}

// storedBlob reports whether the server's storage holds a file for digest.
func (e *env) storedBlob(t testing.TB, digest string) bool {
	t.Helper()
	algo, hex, _ := strings.Cut(digest, ":")
	_, err := os.Stat(filepath.Join(e.srv.DataDir, "storage", "blobs", algo, hex[:2], hex))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// fillFiles counts the files of fills in progress and of the scratch copies of streamed
// fills (content/fill: staging files in <storage>/.fills/<process>/, scratch copies below its
// transient/): none means that no fill is running or kept.
func (e *env) fillFiles(t testing.TB) int {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(e.srv.DataDir, "storage", ".fills", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if strings.HasSuffix(d, ".lock") {
			continue
		}
		err := filepath.WalkDir(d, func(_ string, de fs.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() {
				n++
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// reports returns the task's progress reports as code → report.
func reports(task map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := task["progress_reports"].([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		out[client.Str(m, "code")] = m
	}
	return out
}

// pullAll pulls name:ref from the server like a client (every platform of an index) and
// returns the manifest digest and the blob digests it fetched, each checked against its
// digest by the registry client.
func (e *env) pullAll(ctx context.Context, name, ref string) (string, []string, error) {
	body, mt, digest, err := e.reg.Manifest(ctx, name, ref)
	if err != nil {
		return "", nil, err
	}
	m, err := client.ParseRefs(body)
	if err != nil {
		return "", nil, fmt.Errorf("%s:%s: %w", name, ref, err)
	}
	images := [][]byte{body}
	if strings.Contains(mt, "index") || strings.Contains(mt, "list") {
		images = nil
		for _, c := range m.Manifests {
			b, _, _, err := e.reg.Manifest(ctx, name, c)
			if err != nil {
				return "", nil, err
			}
			images = append(images, b)
		}
	}
	var blobs []string
	for _, raw := range images {
		im, err := client.ParseRefs(raw)
		if err != nil {
			return "", nil, err
		}
		for _, d := range append([]string{im.Config}, im.Layers...) {
			if _, err := e.reg.Blob(ctx, name, d); err != nil {
				return "", nil, err
			}
			blobs = append(blobs, d)
		}
	}
	return digest, blobs, nil
}
