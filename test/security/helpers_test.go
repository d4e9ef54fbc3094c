package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

const (
	// waitTimeout bounds every poll for a state the server reaches on its own.
	waitTimeout = 60 * time.Second
	// pollEvery is the polling interval of those waits.
	pollEvery = 25 * time.Millisecond
)

// Manifest media types of signed Docker schema 1, which the review used to poison the cache.
const (
	mediaTypeSchema1JWS = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeSchema1    = "application/vnd.docker.distribution.manifest.v1+json"
)

// manifestAccept is what the Go client accepts for manifests: every type, schema 1 included.
var manifestAccept = strings.Join([]string{
	upstream.MediaTypeOCIIndex, upstream.MediaTypeDockerManifestList,
	upstream.MediaTypeOCIManifest, upstream.MediaTypeDockerManifest,
	mediaTypeSchema1JWS, mediaTypeSchema1,
}, ", ")

// testCtx returns a context that ends with t (bounded to a few minutes).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// needTools fails t when a client the tests use is missing.
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: install the packages .ci/run installs", n)
		}
	}
}

// startHub starts the local Docker Hub (a real registry behind a token front), closed when t
// ends.
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
	srv *harness.Server
	api *apiClient
	// reg is an anonymous registry client; admin sends the admin's Basic credentials.
	reg, admin *regClient
}

// startServer runs bin/pulpgo serve on engine e with extra serve arguments.
func startServer(t testing.TB, e testenv.Engine, args ...string) *env {
	t.Helper()
	srv := harness.Start(t, harness.Options{Engine: e, Args: args, Binary: os.Getenv("PULPGO_TEST_BINARY")})
	return &env{
		srv:   srv,
		api:   &apiClient{base: srv.URL, c: newHTTPClient()},
		reg:   &regClient{base: srv.URL, c: newHTTPClient()},
		admin: &regClient{base: srv.URL, c: newHTTPClient(), user: harness.Username, pass: harness.Password},
	}
}

// newHTTPClient returns a client for 127.0.0.1: no proxy, no transparent gzip, no redirects
// followed by surprise (the registry answers blobs itself), many connections per host.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 2 * time.Minute,
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

// createCache creates a pull-through remote (name, url, plus remoteExtra) and a pull-through
// distribution (name, base_path, plus distExtra), waits for the distribution's task, and
// returns the distribution's href.
func (e *env) createCache(t testing.TB, name, upstreamURL string, remoteExtra, distExtra map[string]any) string {
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
	body = map[string]any{"name": name, "base_path": name, "remote": str(remote, "pulp_href")}
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

// names returns the names of every object at a list endpoint.
func (a *apiClient) names(t testing.TB, path string) []string {
	t.Helper()
	var out []string
	for _, o := range a.list(t, path, nil) {
		out = append(out, str(o, "name"))
	}
	return out
}

// Where the cache's child objects are listed.
const (
	reposPath   = "/pulp/api/v3/repositories/container/container/"
	remotesPath = "/pulp/api/v3/remotes/container/container/"
	distsPath   = "/pulp/api/v3/distributions/container/container/"
)

// childObjects returns the names of every container repository, remote and distribution
// whose name is one of names.
func (a *apiClient) childObjects(t testing.TB, names ...string) []string {
	t.Helper()
	var out []string
	for _, path := range []string{reposPath, remotesPath, distsPath} {
		for _, n := range a.names(t, path) {
			if slices.Contains(names, n) {
				out = append(out, path+" "+n)
			}
		}
	}
	return out
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

// patch PATCHes href with body and waits for the task it starts, if it answers 202.
func (a *apiClient) patch(t testing.TB, href string, body map[string]any) {
	t.Helper()
	status, raw := a.do(t, http.MethodPatch, href, body)
	switch status {
	case http.StatusAccepted:
		a.waitTask(t, str(decodeObject(t, raw), "task"))
	case http.StatusOK:
	default:
		t.Fatalf("PATCH %s %v: %d %s", href, body, status, raw)
	}
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

// poll calls cond every pollEvery until it reports true, failing t after waitTimeout with
// cond's last explanation.
func poll(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	pollFor(t, waitTimeout, what, cond)
}

// pollFor is poll with its own timeout.
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

// ---------------------------------------------------------------------------------------------
// A small registry client.

// regClient pulls from the registry the way a container client does, checking every digest.
type regClient struct {
	base       string
	c          *http.Client
	user, pass string
}

// answer is one response of the registry, read whole.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
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

// request sends method path with the headers; the path is sent as given.
func (r *regClient) request(ctx context.Context, method, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	return r.c.Do(req)
}

// do sends method path (Accept: every manifest type) and reads the whole answer.
func (r *regClient) do(t testing.TB, method, path string) answer {
	t.Helper()
	resp, err := r.request(testCtx(t), method, path, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, path, err)
	}
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// manifest GETs /v2/<name>/manifests/<ref>, checks that Docker-Content-Digest is the sha256
// of the body (and equals ref when ref is a digest), and returns the body and digest.
func (r *regClient) manifest(ctx context.Context, name, ref string) (body []byte, digest string, err error) {
	path := "/v2/" + name + "/manifests/" + ref
	resp, err := r.request(ctx, http.MethodGet, path, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", &regError{"GET", path, resp.StatusCode, string(body)}
	}
	digest = sha256Digest(body)
	if h := resp.Header.Get("Docker-Content-Digest"); h != digest {
		return nil, "", fmt.Errorf("GET %s: Docker-Content-Digest %q, body hashes to %s", path, h, digest)
	}
	if strings.HasPrefix(ref, "sha256:") && ref != digest {
		return nil, "", fmt.Errorf("GET %s: body hashes to %s", path, digest)
	}
	return body, digest, nil
}

// blob GETs /v2/<name>/blobs/<digest>, reads it all and checks its sha256; it returns the
// number of bytes read.
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
	return n, nil
}

// pull fetches name:ref like a client (an image manifest, then its config and layers, each
// checked against its digest) and returns the manifest's digest.
func (r *regClient) pull(ctx context.Context, name, ref string) (string, error) {
	body, digest, err := r.manifest(ctx, name, ref)
	if err != nil {
		return "", err
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return digest, fmt.Errorf("manifest %s:%s: %w", name, ref, err)
	}
	if m.Config.Digest == "" {
		return digest, fmt.Errorf("manifest %s:%s has no config", name, ref)
	}
	blobs := []string{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range blobs {
		if _, err := r.blob(ctx, name, d); err != nil {
			return digest, err
		}
	}
	return digest, nil
}

// mustPull pulls name:ref and checks that its manifest digest is want.
func (r *regClient) mustPull(t testing.TB, name, ref, want string) {
	t.Helper()
	got, err := r.pull(testCtx(t), name, ref)
	if err != nil {
		t.Fatalf("pull %s:%s: %v", name, ref, err)
	}
	if got != want {
		t.Fatalf("pull %s:%s: manifest %s, want %s", name, ref, got, want)
	}
}

// regErrorBody is the distribution spec's error body.
type regErrorBody struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// expectStatus sends method path and checks the status; for a GET with an error status, it
// also checks that the spec's error body carries one of codes (when codes are given).
func expectStatus(t testing.TB, r *regClient, method, path string, status int, codes ...string) answer {
	t.Helper()
	a := r.do(t, method, path)
	if a.Status != status {
		t.Errorf("%s %s (as %s): status %d, want %d; body %.300s", method, path, r.who(), a.Status, status, a.Body)
		return a
	}
	if method == http.MethodHead || status < 400 || len(codes) == 0 {
		return a
	}
	var eb regErrorBody
	if err := json.Unmarshal(a.Body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Errorf("%s %s: body is not {\"errors\":[...]}: %.300s", method, path, a.Body)
		return a
	}
	if !slices.Contains(codes, eb.Errors[0].Code) {
		t.Errorf("%s %s: code %q, want %s; body %.300s", method, path, eb.Errors[0].Code, strings.Join(codes, " or "), a.Body)
	}
	return a
}

// who names the caller in messages.
func (r *regClient) who() string {
	if r.user == "" {
		return "anonymous"
	}
	return r.user
}

// catalog returns the repositories /v2/_catalog lists to r.
func (r *regClient) catalog(t testing.TB) []string {
	t.Helper()
	a := r.do(t, http.MethodGet, "/v2/_catalog?n=1000")
	if a.Status != http.StatusOK {
		t.Fatalf("GET /v2/_catalog as %s: %d %s", r.who(), a.Status, a.Body)
	}
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.Unmarshal(a.Body, &c); err != nil {
		t.Fatalf("GET /v2/_catalog: %v: %s", err, a.Body)
	}
	return c.Repositories
}

// sha256Digest returns "sha256:<hex>" of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobFile is where the server's filesystem storage keeps a blob or manifest.
func blobFile(t testing.TB, e *env, digest string) string {
	t.Helper()
	rel, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatalf("blob path of %s: %v", digest, err)
	}
	return filepath.Join(e.srv.DataDir, "storage", filepath.FromSlash(rel))
}
