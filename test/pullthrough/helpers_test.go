package pullthrough

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// Names and paths the tests share.
const (
	// recordTaskName is the name of the task that records pulled content (Pulp's name).
	recordTaskName = "pulp_container.app.tasks.download_image_data.download_image_data"
	// cacheBase is the pull-through distribution's base path, as in Pulp's documentation.
	cacheBase = "docker-cache"
)

// ---------------------------------------------------------------------------------------------
// Setup: upstream, server, pull-through remote and distribution.

// env is one running server with its clients.
type env struct {
	srv  *harness.Server
	home *harness.Home
	api  *apiClient
	// reg is an anonymous registry client; regAdmin sends the admin's Basic credentials.
	reg, regAdmin *regClient
}

// binaryEnv names a prebuilt server binary to test instead of building ./cmd/pulpgo (for
// testing a snapshot while the working tree is being edited); empty means harness.Binary.
const binaryEnv = "PULPGO_TEST_BINARY"

// startServer runs bin/pulpgo serve on engine e with extra serve arguments.
func startServer(t testing.TB, e testenv.Engine, listen string, args ...string) *env {
	t.Helper()
	return startServerWith(t, harness.Options{Engine: e, Listen: listen, Args: args})
}

// startServerWith runs bin/pulpgo serve with opts (Binary from PULPGO_TEST_BINARY); with
// opts.TLS its clients use that configuration.
func startServerWith(t testing.TB, opts harness.Options) *env {
	t.Helper()
	opts.Binary = os.Getenv(binaryEnv)
	srv := harness.Start(t, opts)
	home := harness.NewClientHome(t, srv)
	httpClient := func() *http.Client {
		c := client.NewHTTPClient()
		if opts.TLS != nil {
			c.Transport.(*http.Transport).TLSClientConfig = opts.TLS.Clone()
		}
		return c
	}
	return &env{
		srv:      srv,
		home:     home,
		api:      &apiClient{&client.API{Base: srv.URL, HTTP: httpClient()}},
		reg:      &regClient{&client.Registry{Base: srv.URL, HTTP: httpClient()}},
		regAdmin: &regClient{&client.Registry{Base: srv.URL, HTTP: httpClient(), User: harness.Username, Pass: harness.Password}},
	}
}

// freshEngine returns an engine like e with databases of its own (a new PostgreSQL database
// and Redis database for the postgres engine), for a second server in the same test.
func freshEngine(t testing.TB, e testenv.Engine) testenv.Engine {
	t.Helper()
	if e.DatabaseURL == "" {
		return e
	}
	return testenv.Postgres(t)
}

// createCache creates a pull-through remote and distribution named name at basePath through
// the API; see client.API.CreatePullThrough.
func (e *env) createCache(t testing.TB, name, basePath, upstreamURL string, remoteExtra, distExtra map[string]any) string {
	t.Helper()
	return e.api.CreatePullThrough(t, name, basePath, upstreamURL, remoteExtra, distExtra)
}

// ---------------------------------------------------------------------------------------------
// The Pulp API.

// apiClient is the admin's API client with this package's helpers.
type apiClient struct{ *client.API }

// byName returns the one object named name at a list endpoint, failing t unless exactly one
// exists.
func (a *apiClient) byName(t testing.TB, path, name string) map[string]any {
	t.Helper()
	res := a.List(t, path, url.Values{"name": {name}})
	if len(res) != 1 {
		t.Fatalf("GET %s?name=%s: %d results, want 1: %v", path, name, len(res), res)
	}
	return res[0]
}

// recordTasks returns the download_image_data tasks.
func (a *apiClient) recordTasks(t testing.TB) []map[string]any {
	t.Helper()
	return a.List(t, "/pulp/api/v3/tasks/", url.Values{"name": {recordTaskName}})
}

// waitRecorded waits until the repository named repoName exists with latest version number
// version and every download_image_data task is in a final state, fails t if one of those
// tasks failed, and returns the repository.
func (a *apiClient) waitRecorded(t testing.TB, repoName string, version int) map[string]any {
	t.Helper()
	var repo map[string]any
	client.Poll(t, fmt.Sprintf("repository %s to reach version %d with its recording tasks finished", repoName, version), func() (bool, string) {
		tasks := a.recordTasks(t)
		finished, states := allCompleted(t, "recording", tasks)
		done := len(tasks) > 0 && finished
		res := a.List(t, "/pulp/api/v3/repositories/container/container/", url.Values{"name": {repoName}})
		if len(res) != 1 {
			return false, fmt.Sprintf("%d repositories named %s; recording tasks %v", len(res), repoName, states)
		}
		repo = res[0]
		n := versionNumber(client.Str(repo, "latest_version_href"))
		if done && n == version {
			return true, ""
		}
		return false, fmt.Sprintf("latest version %v; recording tasks %v", repo["latest_version_href"], states)
	})
	return repo
}

// allCompleted reports whether every task of tasks (of the kind what) completed, with their
// states; it fails t if one failed or was canceled.
func allCompleted(t testing.TB, what string, tasks []map[string]any) (bool, []string) {
	t.Helper()
	var states []string
	done := true
	for _, task := range tasks {
		s := client.Str(task, "state")
		states = append(states, s)
		switch s {
		case "failed", "canceled":
			t.Fatalf("%s task %s %s: %v", what, task["pulp_href"], s, task["error"])
		case "completed":
		default:
			done = false
		}
	}
	return done, states
}

// versionNumber returns n of ".../versions/<n>/", or -1.
func versionNumber(href string) int {
	parts := strings.Split(strings.TrimSuffix(href, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-2] != "versions" {
		return -1
	}
	n, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return -1
	}
	return n
}

// tagsOf returns the tag names in a repository version, sorted, with their manifests' hrefs.
func (a *apiClient) tagsOf(t testing.TB, versionHref string) ([]string, map[string]string) {
	t.Helper()
	var names []string
	manifests := map[string]string{}
	for _, tag := range a.List(t, "/pulp/api/v3/content/container/tags/", url.Values{"repository_version": {versionHref}}) {
		names = append(names, client.Str(tag, "name"))
		manifests[client.Str(tag, "name")] = client.Str(tag, "tagged_manifest")
	}
	sort.Strings(names)
	return names, manifests
}

// digestsOf returns the digests of the blobs or manifests ("blobs", "manifests") in a
// repository version, sorted.
func (a *apiClient) digestsOf(t testing.TB, kind, versionHref string) []string {
	t.Helper()
	var out []string
	for _, c := range a.List(t, "/pulp/api/v3/content/container/"+kind+"/", url.Values{"repository_version": {versionHref}}) {
		out = append(out, client.Str(c, "digest"))
	}
	sort.Strings(out)
	return out
}

// presentCounts returns content_summary.present of a version as type → count.
func presentCounts(t testing.TB, version map[string]any) map[string]int {
	t.Helper()
	summary, ok := version["content_summary"].(map[string]any)
	if !ok {
		t.Fatalf("version %v has no content_summary", version["pulp_href"])
	}
	present, ok := summary["present"].(map[string]any)
	if !ok {
		t.Fatalf("version %v: content_summary has no present: %v", version["pulp_href"], summary)
	}
	out := map[string]int{}
	for k, v := range present {
		m, _ := v.(map[string]any)
		n, _ := m["count"].(float64)
		out[k] = int(n)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Waiting.

// waitPast waits (by polling the clock) until the time is after at.
func waitPast(at time.Time) {
	tick := time.NewTicker(client.PollEvery)
	defer tick.Stop()
	for time.Now().Before(at) {
		<-tick.C
	}
}

// ---------------------------------------------------------------------------------------------
// A small registry client.

// regClient is a registry client with this package's helpers: pulls that choose an index's
// child by platform and check that Content-Type agrees with the manifest.
type regClient struct{ *client.Registry }

// manifest is Registry.Manifest that also checks that the Content-Type is the mediaType
// the manifest names (when it names one).
func (r *regClient) manifest(ctx context.Context, name, ref string) (body []byte, mediaType, digest string, err error) {
	body, mediaType, digest, err = r.Manifest(ctx, name, ref)
	if err != nil {
		return nil, "", "", err
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(body, &probe)
	if probe.MediaType != "" && probe.MediaType != mediaType {
		return nil, "", "", fmt.Errorf("GET %s: Content-Type %q, manifest says %q", "/v2/"+name+"/manifests/"+ref, mediaType, probe.MediaType)
	}
	return body, mediaType, digest, nil
}

// pulled is what pull fetched.
type pulled struct {
	// Digest is the digest of the manifest ref named (an index's, for an index).
	Digest string
	// Image is the digest of the image manifest whose blobs were fetched.
	Image string
	// Blobs are the config and layer digests fetched.
	Blobs []string
}

// pull fetches name:ref like a client: the manifest; for an index, the child for platform
// ("linux/amd64" when empty); then the config and the layers, each checked against its digest.
func (r *regClient) pull(ctx context.Context, name, ref, platform string) (pulled, error) {
	if platform == "" {
		platform = "linux/amd64"
	}
	body, mt, digest, err := r.manifest(ctx, name, ref)
	if err != nil {
		return pulled{}, err
	}
	p := pulled{Digest: digest, Image: digest}
	var m struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return p, fmt.Errorf("manifest %s:%s: %w", name, ref, err)
	}
	if mt == upstream.MediaTypeOCIIndex || mt == upstream.MediaTypeDockerManifestList {
		child := ""
		for _, c := range m.Manifests {
			if c.Platform.OS+"/"+c.Platform.Architecture == platform {
				child = c.Digest
			}
		}
		if child == "" {
			return p, fmt.Errorf("index %s:%s has no %s manifest", name, ref, platform)
		}
		if body, _, p.Image, err = r.manifest(ctx, name, child); err != nil {
			return p, err
		}
		m.Config.Digest, m.Layers = "", nil
		if err := json.Unmarshal(body, &m); err != nil {
			return p, fmt.Errorf("manifest %s@%s: %w", name, child, err)
		}
	}
	if m.Config.Digest == "" {
		return p, fmt.Errorf("manifest %s:%s has no config", name, ref)
	}
	p.Blobs = append(p.Blobs, m.Config.Digest)
	for _, l := range m.Layers {
		p.Blobs = append(p.Blobs, l.Digest)
	}
	for _, d := range p.Blobs {
		if _, err := r.Blob(ctx, name, d); err != nil {
			return p, err
		}
	}
	return p, nil
}

// pullN runs n pulls of name:ref at the same moment and returns their errors joined.
func (r *regClient) pullN(ctx context.Context, n int, name, ref string) error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = r.pull(ctx, name, ref, "")
		}()
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}

// mustPull pulls name:ref and checks that the manifest is want's (the platform child's for an
// index) and that every blob of that image was fetched.
func (r *regClient) mustPull(t testing.TB, name, ref string, want upstream.Image) pulled {
	t.Helper()
	p, err := r.pull(client.Context(t), name, ref, want.Platform)
	if err != nil {
		t.Fatalf("pull %s:%s: %v", name, ref, err)
	}
	if p.Image != want.ManifestDigest {
		t.Fatalf("pull %s:%s: manifest %s, want %s", name, ref, p.Image, want.ManifestDigest)
	}
	if got, exp := sortedCopy(p.Blobs), blobDigests(want); !slices.Equal(got, exp) {
		t.Fatalf("pull %s:%s: blobs %v, want %v", name, ref, got, exp)
	}
	return p
}

// blobDigests returns the digests of img's config and layers (and its children's), sorted.
func blobDigests(img upstream.Image) []string {
	var out []string
	for _, b := range img.Blobs() {
		out = append(out, b.Digest)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------------------------
// Registry error answers.

// expectRegError sends method path and checks the answer: status, the distribution spec's
// JSON error body with one of codes, and the Docker-Distribution-API-Version header.
func expectRegError(t testing.TB, r *regClient, method, path string, status int, codes ...string) {
	t.Helper()
	resp, err := r.Request(client.Context(t), method, path, http.Header{"Accept": {client.ManifestAccept}})
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, status, body)
		return
	}
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Errorf("%s %s: Docker-Distribution-API-Version %q", method, path, v)
	}
	if method == http.MethodHead {
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, body)
	}
	var eb client.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Errorf("%s %s: body is not {\"errors\":[...]}: %s", method, path, body)
		return
	}
	if !slices.Contains(codes, eb.Errors[0].Code) {
		t.Errorf("%s %s: code %q, want %s; body %s", method, path, eb.Errors[0].Code, strings.Join(codes, " or "), body)
	}
	if eb.Errors[0].Message == "" {
		t.Errorf("%s %s: empty message: %s", method, path, body)
	}
}

// ---------------------------------------------------------------------------------------------
// skopeo.

// skopeoCopy copies docker://<server>/<ref> into a new dir: with extra arguments (credentials,
// --override-arch) and returns the result and the directory.
func skopeoCopy(t testing.TB, e *env, ref string, extra ...string) (harness.Result, string) {
	t.Helper()
	client.NeedTools(t, "skopeo")
	dir := filepath.Join(t.TempDir(), "image")
	args := append([]string{"copy", "--quiet", "--src-tls-verify=false"}, extra...)
	args = append(args, "docker://"+e.srv.Addr+"/"+ref, "dir:"+dir)
	return e.home.Run(t, "skopeo", args...), dir
}

// mustSkopeoCopy copies ref with skopeo and checks the copy against want (an image manifest).
func mustSkopeoCopy(t testing.TB, e *env, ref string, want upstream.Image, extra ...string) {
	t.Helper()
	r, dir := skopeoCopy(t, e, ref, extra...)
	r.Must(t)
	checkDirCopy(t, dir, want)
}

// checkDirCopy checks a skopeo dir: copy: manifest.json is want's manifest byte for byte and
// every config and layer file hashes to its name.
func checkDirCopy(t testing.TB, dir string, want upstream.Image) {
	t.Helper()
	if got := fileDigest(t, filepath.Join(dir, "manifest.json")); got != want.ManifestDigest {
		t.Errorf("copied manifest.json hashes to %s, want %s", got, want.ManifestDigest)
	}
	for _, b := range want.Blobs() {
		hexPart := strings.TrimPrefix(b.Digest, "sha256:")
		if got := fileDigest(t, filepath.Join(dir, hexPart)); got != b.Digest {
			t.Errorf("copied blob %s hashes to %s", b.Digest, got)
		}
	}
}

// fileDigest returns the sha256 digest of a file, or a note when it cannot be read.
func fileDigest(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "(" + err.Error() + ")"
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ---------------------------------------------------------------------------------------------
// Files of the server's data directory.

// stagingFiles returns the fill-*.part files under dir with their modification times.
func stagingFiles(t testing.TB, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file renamed or removed during the walk
			}
			return err
		}
		if ok, _ := filepath.Match("fill-*.part", d.Name()); ok && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				out[path] = info.ModTime()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// equalJSON reports whether two decoded JSON values are equal.
func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
