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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	// waitTimeout bounds every poll for a state the server reaches on its own.
	waitTimeout = 60 * time.Second
	// pollEvery is the polling interval of those waits.
	pollEvery = 25 * time.Millisecond
)

// manifestAccept is what the Go client accepts for manifests: every type, as podman does.
var manifestAccept = strings.Join([]string{
	upstream.MediaTypeOCIIndex, upstream.MediaTypeDockerManifestList,
	upstream.MediaTypeOCIManifest, upstream.MediaTypeDockerManifest,
}, ", ")

// needTools fails t when a client the tests use is missing.
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: install the packages .ci/run installs", n)
		}
	}
}

// testCtx returns a context that ends with t (bounded to a few minutes).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------------------------
// Setup: upstream, server, pull-through remote and distribution.

// startHub starts the fake Docker Hub, closed when t ends.
func startHub(t testing.TB) *upstream.Upstream {
	t.Helper()
	needTools(t, "docker-registry", "skopeo", "busybox")
	hub, err := upstream.Start(testCtx(t), upstream.Options{})
	if err != nil {
		t.Fatalf("start the upstream: %v", err)
	}
	t.Cleanup(func() { hub.Close() })
	return hub
}

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
	srv := harness.Start(t, harness.Options{Engine: e, Listen: listen, Args: args, Binary: os.Getenv(binaryEnv)})
	home := harness.NewClientHome(t, srv)
	return &env{
		srv:      srv,
		home:     home,
		api:      &apiClient{base: srv.URL, c: newHTTPClient()},
		reg:      &regClient{base: srv.URL, c: newHTTPClient()},
		regAdmin: &regClient{base: srv.URL, c: newHTTPClient(), user: harness.Username, pass: harness.Password},
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

// newHTTPClient returns a client for 127.0.0.1: no proxy, no transparent gzip, many
// connections per host (the concurrency tests open 20 at once).
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        128,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// createCache creates a pull-through remote (name, url = upstream, plus remoteExtra) and a
// pull-through distribution (name, base_path, remote, plus distExtra) through the API, waits
// for the distribution's task, and returns the distribution's href.
func (e *env) createCache(t testing.TB, name, basePath, upstreamURL string, remoteExtra, distExtra map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name, "url": upstreamURL}
	for k, v := range remoteExtra {
		body[k] = v
	}
	status, raw := e.api.do(t, http.MethodPost, "/pulp/api/v3/remotes/container/pull-through/", body)
	if status != http.StatusCreated {
		t.Fatalf("create pull-through remote %s: %d %s", name, status, raw)
	}
	remote := decodeObject(t, raw)
	body = map[string]any{"name": name, "base_path": basePath, "remote": str(remote, "pulp_href")}
	for k, v := range distExtra {
		body[k] = v
	}
	status, raw = e.api.do(t, http.MethodPost, "/pulp/api/v3/distributions/container/pull-through/", body)
	if status != http.StatusAccepted {
		t.Fatalf("create pull-through distribution %s: %d %s", name, status, raw)
	}
	task := e.api.waitTask(t, str(decodeObject(t, raw), "task"))
	created, _ := task["created_resources"].([]any)
	if len(created) != 1 {
		t.Fatalf("distribution task created %v, want one distribution", task["created_resources"])
	}
	return created[0].(string)
}

// ---------------------------------------------------------------------------------------------
// The Pulp API.

// apiClient talks to /pulp/api/v3/ as the admin.
type apiClient struct {
	base string
	c    *http.Client
}

// do sends a request with a JSON body (nil for none) and returns the status and body.
func (a *apiClient) do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(harness.Username, harness.Password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// get GETs path and fails t unless it answers 200 with a JSON object.
func (a *apiClient) get(t testing.TB, path string) map[string]any {
	t.Helper()
	status, raw := a.do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	return decodeObject(t, raw)
}

// list GETs a list endpoint with the filters (and limit=1000) and returns its results.
func (a *apiClient) list(t testing.TB, path string, filters url.Values) []map[string]any {
	t.Helper()
	q := url.Values{"limit": {"1000"}}
	for k, v := range filters {
		q[k] = v
	}
	obj := a.get(t, path+"?"+q.Encode())
	res, ok := obj["results"].([]any)
	if !ok {
		t.Fatalf("GET %s?%s: no results list: %v", path, q.Encode(), obj)
	}
	out := make([]map[string]any, 0, len(res))
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("GET %s: result %v is not an object", path, r)
		}
		out = append(out, m)
	}
	return out
}

// byName returns the one object named name at a list endpoint, failing t unless exactly one
// exists.
func (a *apiClient) byName(t testing.TB, path, name string) map[string]any {
	t.Helper()
	res := a.list(t, path, url.Values{"name": {name}})
	if len(res) != 1 {
		t.Fatalf("GET %s?name=%s: %d results, want 1: %v", path, name, len(res), res)
	}
	return res[0]
}

// waitTask polls a task until it is completed (failing t when it fails, is canceled or is
// still running after waitTimeout) and returns it.
func (a *apiClient) waitTask(t testing.TB, href string) map[string]any {
	t.Helper()
	if href == "" {
		t.Fatal("wait for a task: empty href")
	}
	var task map[string]any
	poll(t, "task "+href+" to finish", func() (bool, string) {
		task = a.get(t, href)
		switch s := str(task, "state"); s {
		case "completed":
			return true, ""
		case "failed", "canceled":
			t.Fatalf("task %s %s: %v", href, s, task["error"])
		}
		return false, fmt.Sprintf("state %v", task["state"])
	})
	return task
}

// recordTasks returns the download_image_data tasks.
func (a *apiClient) recordTasks(t testing.TB) []map[string]any {
	t.Helper()
	return a.list(t, "/pulp/api/v3/tasks/", url.Values{"name": {recordTaskName}})
}

// waitRecorded waits until the repository named repoName exists with latest version number
// version and every download_image_data task is in a final state, fails t if one of those
// tasks failed, and returns the repository.
func (a *apiClient) waitRecorded(t testing.TB, repoName string, version int) map[string]any {
	t.Helper()
	var repo map[string]any
	poll(t, fmt.Sprintf("repository %s to reach version %d with its recording tasks finished", repoName, version), func() (bool, string) {
		tasks := a.recordTasks(t)
		var states []string
		done := len(tasks) > 0
		for _, task := range tasks {
			s := str(task, "state")
			states = append(states, s)
			switch s {
			case "failed", "canceled":
				t.Fatalf("recording task %s %s: %v", task["pulp_href"], s, task["error"])
			case "completed":
			default:
				done = false
			}
		}
		res := a.list(t, "/pulp/api/v3/repositories/container/container/", url.Values{"name": {repoName}})
		if len(res) != 1 {
			return false, fmt.Sprintf("%d repositories named %s; recording tasks %v", len(res), repoName, states)
		}
		repo = res[0]
		n := versionNumber(str(repo, "latest_version_href"))
		if done && n == version {
			return true, ""
		}
		return false, fmt.Sprintf("latest version %v; recording tasks %v", repo["latest_version_href"], states)
	})
	return repo
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
	for _, tag := range a.list(t, "/pulp/api/v3/content/container/tags/", url.Values{"repository_version": {versionHref}}) {
		names = append(names, str(tag, "name"))
		manifests[str(tag, "name")] = str(tag, "tagged_manifest")
	}
	sort.Strings(names)
	return names, manifests
}

// digestsOf returns the digests of the blobs or manifests ("blobs", "manifests") in a
// repository version, sorted.
func (a *apiClient) digestsOf(t testing.TB, kind, versionHref string) []string {
	t.Helper()
	var out []string
	for _, c := range a.list(t, "/pulp/api/v3/content/container/"+kind+"/", url.Values{"repository_version": {versionHref}}) {
		out = append(out, str(c, "digest"))
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

func decodeObject(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return m
}

// str returns m[k] as a string ("" when absent or not a string).
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// ---------------------------------------------------------------------------------------------
// Waiting.

// poll calls cond every pollEvery until it reports true, failing t after waitTimeout with
// cond's last explanation.
func poll(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	pollFor(t, waitTimeout, what, cond)
}

func pollFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", timeout, what, why)
		}
		<-tick.C
	}
}

// waitPast waits (by polling the clock) until the time is after at.
func waitPast(at time.Time) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for time.Now().Before(at) {
		<-tick.C
	}
}

// ---------------------------------------------------------------------------------------------
// A small registry client.

// regClient pulls from the registry the way a container client does, checking every digest
// and throwing the bytes away.
type regClient struct {
	base       string
	c          *http.Client
	user, pass string
}

// regError is an answer other than 200.
type regError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *regError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// request sends method path (the path is sent exactly as given, unescaped and uncleaned).
func (r *regClient) request(ctx context.Context, method, path string, hdr http.Header) (*http.Response, error) {
	u, err := url.Parse(r.base)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+"/", nil)
	if err != nil {
		return nil, err
	}
	u.Opaque = path // the request line carries the path byte for byte: no escaping, no cleaning
	req.URL = u
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	return r.c.Do(req)
}

// manifest GETs /v2/<name>/manifests/<ref>, checks that Docker-Content-Digest is the sha256
// of the body (and equals ref when ref is a digest), and returns the body, media type and digest.
func (r *regClient) manifest(ctx context.Context, name, ref string) (body []byte, mediaType, digest string, err error) {
	path := "/v2/" + name + "/manifests/" + ref
	resp, err := r.request(ctx, http.MethodGet, path, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return nil, "", "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", "", fmt.Errorf("GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", "", &regError{"GET", path, resp.StatusCode, string(body)}
	}
	sum := sha256.Sum256(body)
	digest = "sha256:" + hex.EncodeToString(sum[:])
	if h := resp.Header.Get("Docker-Content-Digest"); h != digest {
		return nil, "", "", fmt.Errorf("GET %s: Docker-Content-Digest %q, body hashes to %s", path, h, digest)
	}
	if strings.HasPrefix(ref, "sha256:") && ref != digest {
		return nil, "", "", fmt.Errorf("GET %s: body hashes to %s", path, digest)
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(body, &probe)
	mediaType = resp.Header.Get("Content-Type")
	if probe.MediaType != "" && probe.MediaType != mediaType {
		return nil, "", "", fmt.Errorf("GET %s: Content-Type %q, manifest says %q", path, mediaType, probe.MediaType)
	}
	return body, mediaType, digest, nil
}

// blob GETs /v2/<name>/blobs/<digest> (following redirects), reads it all and checks its
// sha256; it returns the number of bytes read.
func (r *regClient) blob(ctx context.Context, name, digest string) (int64, error) {
	path := "/v2/" + name + "/blobs/" + digest
	resp, err := r.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, &regError{"GET", path, resp.StatusCode, string(b)}
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: body cut after %d bytes: %w", path, n, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("GET %s: %d bytes hash to %s", path, n, got)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return n, fmt.Errorf("GET %s: Content-Length %d, read %d", path, resp.ContentLength, n)
	}
	return n, nil
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
		if _, err := r.blob(ctx, name, d); err != nil {
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
	p, err := r.pull(testCtx(t), name, ref, want.Platform)
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

// regErrorBody is the distribution spec's error body.
type regErrorBody struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	} `json:"errors"`
}

// expectRegError sends method path and checks the answer: status, the distribution spec's
// JSON error body with one of codes, and the Docker-Distribution-API-Version header.
func expectRegError(t testing.TB, r *regClient, method, path string, status int, codes ...string) {
	t.Helper()
	resp, err := r.request(testCtx(t), method, path, http.Header{"Accept": {manifestAccept}})
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
	var eb regErrorBody
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
	needTools(t, "skopeo")
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
