package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// topology is the split-role deployment under test: api, two content processes and two
// workers on the test's own PostgreSQL and Redis, sharing a data directory, with the local
// Docker Hub as the upstream of the pull-through cache "hub".
type topology struct {
	bin      string
	hub      *upstream.Upstream
	pg       *postgres
	redis    *redisServer
	data     string
	api      *harness.Role
	contents []*harness.Role
	workers  []*harness.Role
	// workerNames are the workers' --app-name, in the order of workers.
	workerNames []string
	http        *http.Client
	// cached is an image pulled once at the start, which the load reads.
	cached upstream.Image
	// recoverRepo is the repository (and remote) that recovery syncs sync.
	recoverRepo, recoverRemote string

	mu     sync.Mutex
	serial int
}

// startTopology starts the services and the roles (extra arguments for every role, the
// storage) with the data directory data (a new one when empty).
func startTopology(t *testing.T, hub *upstream.Upstream, data string, extra ...string) *topology {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	tp := &topology{bin: harness.Binary(t), hub: hub, pg: startPostgres(t), redis: startRedis(t), data: data,
		http: client.NewHTTPClient()}
	tp.http.Timeout = requestDeadline
	common := append([]string{"--database-url", tp.pg.URL, "--redis-url", tp.redis.URL, "--data-dir", data,
		"--db-encryption-key", testenv.KeyFile(t)}, extra...)
	tp.api = harness.StartRole(t, tp.bin, "api", common...)
	for i := range 2 {
		// Workers keep their name across restarts (--app-name), as under a supervisor.
		name := fmt.Sprintf("faults-worker-%d", i+1)
		tp.workerNames = append(tp.workerNames, name)
		tp.workers = append(tp.workers, harness.StartRole(t, tp.bin, "worker", append(common[:len(common):len(common)], "--app-name", name)...))
		tp.contents = append(tp.contents, harness.StartRole(t, tp.bin, "content", common...))
	}
	harness.WaitAPI(t, tp.api.URL())
	for _, c := range tp.contents {
		harness.WaitContent(t, c.Addr)
	}
	tp.mustAPI(t, "POST", "/pulp/api/v3/remotes/container/pull-through/", map[string]any{"name": "hub", "url": hub.URL()}, 201)
	var remote map[string]any
	tp.mustAPI(t, "GET", "/pulp/api/v3/remotes/container/pull-through/?name=hub", nil, 200, &remote)
	href := remote["results"].([]any)[0].(map[string]any)["pulp_href"]
	var task map[string]any
	tp.mustAPI(t, "POST", "/pulp/api/v3/distributions/container/pull-through/",
		map[string]any{"name": "hub", "base_path": "hub", "remote": href}, 202, &task)
	if state := tp.waitTask(t, task["task"].(string), time.Minute); state != "completed" {
		t.Fatalf("distribution task %s", state)
	}
	var err error
	if tp.cached, err = hub.PushSmall(t.Context(), "library/cached", "latest"); err != nil {
		t.Fatal(err)
	}
	for _, c := range tp.contents {
		if err := tp.pull(t.Context(), c, tp.cached); err != nil {
			t.Fatalf("first pull: %v", err)
		}
	}
	return tp
}

// newRecovery gives the case the repository its recovery syncs sync, of its own: a task a
// case left waiting does not hold up the next case's.
func (tp *topology) newRecovery(t *testing.T) {
	t.Helper()
	tp.recoverRepo, tp.recoverRemote = tp.syncRepo(t, tp.cached.Name)
}

// name returns a fresh name with prefix.
func (tp *topology) name(prefix string) string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.serial++
	return fmt.Sprintf("%s%d", prefix, tp.serial)
}

// apiDo sends one API request as admin with the request deadline: the status, the body, the
// error when no answer came, and how long it took.
func (tp *topology) apiDo(method, path string, body any) (int, []byte, error, time.Duration) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	start := time.Now()
	req, err := http.NewRequest(method, tp.api.URL()+path, rd)
	if err != nil {
		return 0, nil, err, 0
	}
	req.SetBasicAuth(harness.Username, harness.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := tp.http.Do(req)
	if err != nil {
		return 0, nil, err, time.Since(start)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err, time.Since(start)
}

// mustAPI sends a request and fails t unless it answers want; the body is decoded into out.
func (tp *topology) mustAPI(t testing.TB, method, path string, body any, want int, out ...any) {
	t.Helper()
	code, b, err, _ := tp.apiDo(method, path, body)
	if err != nil || code != want {
		t.Fatalf("%s %s: %d %s %v, want %d", method, path, code, b, err, want)
	}
	for _, o := range out {
		if err := json.Unmarshal(b, o); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// taskState returns a task's state ("" when it cannot be read).
func (tp *topology) taskState(href string) (string, map[string]any) {
	code, b, err, _ := tp.apiDo("GET", href, nil)
	var task map[string]any
	if err != nil || code != 200 || json.Unmarshal(b, &task) != nil {
		return "", nil
	}
	s, _ := task["state"].(string)
	return s, task
}

// final says whether a task state is final.
func final(state string) bool {
	return state == "completed" || state == "failed" || state == "canceled"
}

// waitTask waits up to timeout for a task to reach a final state and returns it (the last
// state seen when it did not).
func (tp *topology) waitTask(t testing.TB, href string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		state, _ := tp.taskState(href)
		if final(state) || time.Now().After(deadline) {
			return state
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncRepo creates a remote for the hub's image name and a repository, and returns their hrefs.
func (tp *topology) syncRepo(t testing.TB, image string) (repo, remote string) {
	t.Helper()
	name := tp.name("sync")
	var obj map[string]any
	tp.mustAPI(t, "POST", "/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": name, "url": tp.hub.URL(), "upstream_name": image}, 201, &obj)
	remote = obj["pulp_href"].(string)
	tp.mustAPI(t, "POST", "/pulp/api/v3/repositories/container/container/", map[string]any{"name": name}, 201, &obj)
	return obj["pulp_href"].(string), remote
}

// startSync dispatches a sync of repo from remote and returns the task href.
func (tp *topology) startSync(repo, remote string) (string, error) {
	code, b, err, _ := tp.apiDo("POST", repo+"sync/", map[string]any{"remote": remote})
	if err != nil {
		return "", err
	}
	var task map[string]string
	if code != http.StatusAccepted || json.Unmarshal(b, &task) != nil {
		return "", fmt.Errorf("sync %s: %d %s", repo, code, b)
	}
	return task["task"], nil
}

// latestVersion returns the number of repo's latest version.
func (tp *topology) latestVersion(t testing.TB, repo string) int {
	t.Helper()
	var obj map[string]any
	tp.mustAPI(t, "GET", repo, nil, 200, &obj)
	href, _ := obj["latest_version_href"].(string)
	var n int
	fmt.Sscanf(href[strings.LastIndex(strings.TrimSuffix(href, "/"), "/")+1:], "%d", &n)
	return n
}

// pull pulls img through the cache "hub" of content process c, checking every digest.
func (tp *topology) pull(ctx context.Context, c *harness.Role, img upstream.Image) error {
	reg := &client.Registry{Base: c.URL(), HTTP: tp.http, Accept: img.MediaType}
	if _, _, _, err := reg.Manifest(ctx, "hub/"+img.Name, "latest"); err != nil {
		return err
	}
	for _, b := range img.Blobs() {
		if _, err := reg.Blob(ctx, "hub/"+img.Name, b.Digest); err != nil {
			return err
		}
	}
	return nil
}

// recover measures, from now, how long a pull (of the cached image, through each content
// process), a sync (of the recovery repository) and a push (through the first content
// process) take to succeed, retrying each until it does or 10 s pass; it fails t for each
// that did not, and returns the figures for the matrix.
func (tp *topology) recover(t *testing.T) string {
	t.Helper()
	start := time.Now()
	type result struct {
		what string
		took time.Duration
		err  error
	}
	try := func(what string, f func(ctx context.Context) error) result {
		var err error
		for time.Since(start) < recoveryBound {
			ctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
			err = f(ctx)
			cancel()
			if err == nil {
				return result{what, time.Since(start), nil}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return result{what, time.Since(start), err}
	}
	results := make(chan result, 3)
	go func() {
		results <- try("pull", func(ctx context.Context) error {
			for _, c := range tp.contents {
				if err := tp.pull(ctx, c, tp.cached); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	go func() {
		results <- try("sync", func(ctx context.Context) error {
			href, err := tp.startSync(tp.recoverRepo, tp.recoverRemote)
			if err != nil {
				return err
			}
			if state := tp.waitTask(t, href, recoveryBound-time.Since(start)); state != "completed" {
				_, task := tp.taskState(href)
				return fmt.Errorf("sync task %s: %v", state, task["error"])
			}
			return nil
		})
	}()
	go func() {
		results <- try("push", func(ctx context.Context) error {
			_, err := tp.push(ctx, tp.contents[0], tp.name("team/recover"), 64<<10, nil)
			return err
		})
	}()
	var parts []string
	for range 3 {
		r := <-results
		if r.err != nil || r.took > recoveryBound {
			t.Errorf("%s did not succeed within %s of the recovery: %v", r.what, recoveryBound, r.err)
			parts = append(parts, fmt.Sprintf("%s FAILED (%v)", r.what, shorten(r.err)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.1fs", r.what, r.took.Seconds()))
		}
	}
	return "recovery " + strings.Join(parts, ", ")
}

func shorten(err error) string {
	if err == nil {
		return "slower than the bound"
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// pushed is what push sent.
type pushed struct {
	name, manifest string
	layer          string // the layer's digest
}

// push pushes name:v1 through content process c as admin: one random layer of size bytes
// (sent through slow when not nil, a wrapper of the body reader), a config and a manifest,
// each upload monolithic. The error is a *client.RegistryError for an answer other than the
// expected one.
func (tp *topology) push(ctx context.Context, c *harness.Role, name string, size int, slow func(io.Reader) io.Reader) (pushed, error) {
	layer := make([]byte, size)
	_, _ = rand.Read(layer)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, digestOf(layer)))
	p := pushed{name: name, layer: digestOf(layer)}
	reg := &client.Registry{Base: c.URL(), HTTP: tp.http, User: harness.Username, Pass: harness.Password}
	// The token: the challenge of the first upload request, answered with the credentials.
	resp, err := reg.Request(ctx, "GET", "/v2/"+name+"/tags/list", nil)
	if err != nil {
		return p, err
	}
	resp.Body.Close()
	tok := ""
	req401, _ := http.NewRequestWithContext(ctx, "POST", c.URL()+"/v2/"+name+"/blobs/uploads/", nil)
	if resp, err = tp.http.Do(req401); err != nil {
		return p, err
	}
	resp.Body.Close()
	if ch := client.ParseChallenge(resp.Header.Get("WWW-Authenticate")); ch.Realm != "" {
		if tok, err = reg.Token(ctx, ch); err != nil {
			return p, err
		}
	}
	send := func(method, url string, body io.Reader, size int64, ctype string, want int) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := tp.http.Do(req)
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return nil, &client.RegistryError{Method: method, Path: req.URL.Path, Status: resp.StatusCode, Body: string(b)}
		}
		return resp, nil
	}
	upload := func(blob []byte, slow func(io.Reader) io.Reader) error {
		resp, err := send("POST", c.URL()+"/v2/"+name+"/blobs/uploads/", nil, 0, "", http.StatusAccepted)
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = c.URL() + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		var body io.Reader = bytes.NewReader(blob)
		if slow != nil {
			body = slow(body)
		}
		_, err = send("PUT", loc+sep+"digest="+digestOf(blob), body, int64(len(blob)), "application/octet-stream", http.StatusCreated)
		return err
	}
	if err := upload(layer, slow); err != nil {
		return p, err
	}
	if err := upload(config, nil); err != nil {
		return p, err
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		upstream.MediaTypeOCIManifest, digestOf(config), len(config), p.layer, len(layer)))
	p.manifest = digestOf(manifest)
	_, err = send("PUT", c.URL()+"/v2/"+name+"/manifests/v1", bytes.NewReader(manifest), int64(len(manifest)), upstream.MediaTypeOCIManifest, http.StatusCreated)
	return p, err
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// throttled is a reader that sends n bytes then waits for the context to end (or the peer
// to go away), for a push interrupted mid-upload.
type throttled struct {
	r    io.Reader
	left int
	stop <-chan struct{}
}

func (s *throttled) Read(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.stop
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= n
	return n, err
}

// badBlobs walks the filesystem storage below the data directory and returns the stored
// blobs whose content does not have the digest their path names: partial blobs.
func badBlobs(t testing.TB, data string) []string {
	t.Helper()
	var bad []string
	_ = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		dir := filepath.Dir(path)
		if filepath.Base(filepath.Dir(filepath.Dir(dir))) != "blobs" || filepath.Base(filepath.Dir(dir)) != "sha256" ||
			len(d.Name()) != 64 {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil && hex.EncodeToString(h.Sum(nil)) != d.Name() {
			bad = append(bad, path)
		}
		return nil
	})
	return bad
}

// stagingParts lists the fills' staging files (.fills/<process>/fill-*.part) below data.
func stagingParts(data string) []string {
	var parts []string
	_ = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".part") && strings.Contains(path, "/.fills/") {
			parts = append(parts, path)
		}
		return nil
	})
	return parts
}
