package security

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
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
		api:   &apiClient{&client.API{Base: srv.URL, HTTP: newHTTPClient()}},
		reg:   newRegClient(srv.URL, "", ""),
		admin: newRegClient(srv.URL, harness.Username, harness.Password),
	}
}

// newHTTPClient returns client.NewHTTPClient with a timeout of 2 minutes per request.
func newHTTPClient() *http.Client {
	c := client.NewHTTPClient()
	c.Timeout = 2 * time.Minute
	return c
}

// createCache creates a pull-through remote and distribution named name (base_path name too)
// through the API; see client.API.CreatePullThrough.
func (e *env) createCache(t testing.TB, name, upstreamURL string, remoteExtra, distExtra map[string]any) string {
	t.Helper()
	return e.api.CreatePullThrough(t, name, name, upstreamURL, remoteExtra, distExtra)
}

// ---------------------------------------------------------------------------------------------
// The Pulp API.

// apiClient is the admin's API client with this package's helpers.
type apiClient struct{ *client.API }

// names returns the names of every object at a list endpoint.
func (a *apiClient) names(t testing.TB, path string) []string {
	t.Helper()
	var out []string
	for _, o := range a.List(t, path, nil) {
		out = append(out, client.Str(o, "name"))
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

// patch PATCHes href with body and waits for the task it starts, if it answers 202.
func (a *apiClient) patch(t testing.TB, href string, body map[string]any) {
	t.Helper()
	status, raw := a.Do(t, http.MethodPatch, href, body)
	switch status {
	case http.StatusAccepted:
		a.WaitTask(t, client.Str(client.DecodeObject(t, raw), "task"))
	case http.StatusOK:
	default:
		t.Fatalf("PATCH %s %v: %d %s", href, body, status, raw)
	}
}

// ---------------------------------------------------------------------------------------------
// A small registry client.

// regClient is a registry client (anonymous without a user) that accepts every manifest
// type, signed schema 1 included, with this package's helpers.
type regClient struct{ *client.Registry }

// newRegClient returns a registry client for the server at base, anonymous when user is empty.
func newRegClient(base, user, pass string) *regClient {
	return &regClient{&client.Registry{Base: base, HTTP: newHTTPClient(), User: user, Pass: pass, Accept: manifestAccept}}
}

// answer is one response of the registry, read whole.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends method path (Accept: every manifest type) and reads the whole answer.
func (r *regClient) do(t testing.TB, method, path string) answer {
	t.Helper()
	resp, err := r.Request(client.Context(t), method, path, http.Header{"Accept": {manifestAccept}})
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

// pull fetches name:ref like a client (an image manifest, then its config and layers, each
// checked against its digest) and returns the manifest's digest.
func (r *regClient) pull(ctx context.Context, name, ref string) (string, error) {
	body, _, digest, err := r.Manifest(ctx, name, ref)
	if err != nil {
		return "", err
	}
	m, err := client.ParseRefs(body)
	if err != nil {
		return digest, fmt.Errorf("manifest %s:%s: %w", name, ref, err)
	}
	if m.Config == "" {
		return digest, fmt.Errorf("manifest %s:%s has no config", name, ref)
	}
	blobs := append([]string{m.Config}, m.Layers...)
	for _, d := range blobs {
		if _, err := r.Blob(ctx, name, d); err != nil {
			return digest, err
		}
	}
	return digest, nil
}

// mustPull pulls name:ref and checks that its manifest digest is want.
func (r *regClient) mustPull(t testing.TB, name, ref, want string) {
	t.Helper()
	got, err := r.pull(client.Context(t), name, ref)
	if err != nil {
		t.Fatalf("pull %s:%s: %v", name, ref, err)
	}
	if got != want {
		t.Fatalf("pull %s:%s: manifest %s, want %s", name, ref, got, want)
	}
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
	var eb client.ErrorBody
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
	if r.User == "" {
		return "anonymous"
	}
	return r.User
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

// blobFile is where the server's filesystem storage keeps a blob or manifest.
func blobFile(t testing.TB, e *env, digest string) string {
	t.Helper()
	rel, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatalf("blob path of %s: %v", digest, err)
	}
	return filepath.Join(e.srv.DataDir, "storage", filepath.FromSlash(rel))
}
