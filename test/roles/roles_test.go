// Package roles tests pulpgo split into its roles (api, worker, two content apps) on
// PostgreSQL and Redis, as a scaled-out deployment runs it.
package roles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

func api(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.SetBasicAuth("admin", "password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return resp.StatusCode
}

func TestSplitRolesRequireServers(t *testing.T) {
	bin := harness.Binary(t)
	for _, role := range []string{"api", "worker", "content"} {
		out, err := exec.Command(bin, role, "--data-dir", t.TempDir()).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs --database-url and --redis-url") {
			t.Errorf("%s without servers: err %v, output %q; want a refusal naming both flags", role, err, out)
		}
	}
}

// TestSplitRolesRequireKey: roles that share a database across hosts must be given its
// encryption key; none makes one up.
func TestSplitRolesRequireKey(t *testing.T) {
	bin := harness.Binary(t)
	for _, role := range []string{"api", "worker", "content"} {
		cmd := exec.Command(bin, role, "--data-dir", t.TempDir(), "--database-url", "postgres://127.0.0.1:1/none",
			"--redis-url", "redis://127.0.0.1:1/0")
		cmd.Env = append(os.Environ(), "PULPGO_DB_ENCRYPTION_KEY=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs --db-encryption-key") {
			t.Errorf("%s without a key: err %v, output %q; want a refusal naming --db-encryption-key", role, err, out)
		}
	}
}

// TestSplitRoles runs api, worker and two content apps sharing PostgreSQL, Redis and storage:
// both content apps pull the same image at once, and the upstream serves each blob once.
func TestSplitRoles(t *testing.T) { splitRoles(t) }

// TestSplitRolesOnS3 is TestSplitRoles with the blobs in S3 (SeaweedFS): one upstream GET per
// blob across the two content apps, and every blob in the bucket at its size.
func TestSplitRolesOnS3(t *testing.T) {
	weed := s3server.Start(t, "")
	bucket := weed.NewBucket(t)
	img := splitRoles(t, "--storage", "s3://"+bucket+"/pulp", "--s3-endpoint", weed.Endpoint,
		"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey)
	for _, b := range img.Blobs() {
		key := "pulp/blobs/sha256/" + b.Digest[7:9] + "/" + b.Digest[7:]
		harness.WaitFor(t, "blob "+b.Digest+" in the bucket", func() bool {
			info, err := weed.Client.StatObject(t.Context(), bucket, key, minio.StatObjectOptions{})
			return err == nil && info.Size == b.Size
		})
	}
}

// splitRoles runs TestSplitRoles with more arguments (the storage) for every role, and
// returns the image pulled.
func splitRoles(t *testing.T, storage ...string) upstream.Image {
	bin, up, img, common := splitSetup(t, 24, 3)
	common = append(append(common, "--log-level", "debug"), storage...)
	a := harness.StartRole(t, bin, "api", common...)
	harness.StartRole(t, bin, "worker", common...)
	c1 := harness.StartRole(t, bin, "content", common...)
	c2 := harness.StartRole(t, bin, "content", common...)
	base := "http://" + a.Addr
	var status struct {
		OnlineWorkers     []any `json:"online_workers"`
		OnlineContentApps []any `json:"online_content_apps"`
		OnlineAPIApps     []any `json:"online_api_apps"`
	}
	harness.WaitFor(t, "api, worker and both content apps online", func() bool {
		resp, err := http.Get(base + "/pulp/api/v3/status/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&status)
		return len(status.OnlineWorkers) == 1 && len(status.OnlineContentApps) >= 1 && len(status.OnlineAPIApps) == 1
	})

	createCache(t, base, up.URL())
	for _, c := range []*harness.Role{c1, c2} {
		harness.WaitContent(t, c.Addr)
	}

	up.Reset()
	up.SetBlobThrottle(16 << 20) // 16 MiB/s: the fills overlap
	pullAtOnce(t, up, img, []*harness.Role{c1, c1, c2, c2})

	// The worker records the pull as one version of the image's repository.
	harness.WaitFor(t, "the pull recorded", func() bool {
		var repos struct {
			Results []struct {
				LatestVersionHref string `json:"latest_version_href"`
			} `json:"results"`
		}
		api(t, "GET", base+"/pulp/api/v3/repositories/container/container/?name=hub/library/large", nil, &repos)
		return len(repos.Results) == 1 && strings.HasSuffix(repos.Results[0].LatestVersionHref, "/versions/1/")
	})
	return img
}

// pullAtOnce pulls img (from the cache "hub") through each of contents at once, one pull per
// entry, and checks that every pull got the right digests and that the upstream served each
// blob once.
func pullAtOnce(t *testing.T, up *upstream.Upstream, img upstream.Image, contents []*harness.Role) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(contents))
	for _, c := range contents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pull(t.Context(), "http://"+c.Addr, "hub/"+img.Name, "latest", img)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, b := range img.Blobs() {
		if n := up.CDNGets(b.Digest); n != 1 {
			t.Errorf("upstream served blob %s %d times to %d pulls through content apps, want 1", b.Digest, n, len(contents))
		}
	}
}

// pushMiB pushes name:latest, one layer of 1 MiB, to up.
func pushMiB(t *testing.T, up *upstream.Upstream, name string) upstream.Image {
	t.Helper()
	img, err := up.PushLarge(t.Context(), name, "latest", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// createCache creates the pull-through remote and distribution "hub" (base path hub) for the
// upstream at upstreamURL through the API at base.
func createCache(t *testing.T, base, upstreamURL string) {
	t.Helper()
	var remote map[string]any
	if code := api(t, "POST", base+"/pulp/api/v3/remotes/container/pull-through/", map[string]any{"name": "hub", "url": upstreamURL}, &remote); code != 201 {
		t.Fatalf("create remote: %d %v", code, remote)
	}
	var task map[string]string
	if code := api(t, "POST", base+"/pulp/api/v3/distributions/container/pull-through/",
		map[string]any{"name": "hub", "base_path": "hub", "remote": remote["pulp_href"]}, &task); code != 202 {
		t.Fatalf("create distribution: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
}

// splitSetup builds the server and starts an upstream holding library/large:latest (mib MiB
// in layers layers); it returns the binary, the upstream, the image and the arguments every
// role shares (one PostgreSQL database, one Redis database, one data directory, one key).
func splitSetup(t *testing.T, mib, layers int) (string, *upstream.Upstream, upstream.Image, []string) {
	t.Helper()
	bin := harness.Binary(t)
	up, err := upstream.Start(t.Context(), upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	img, err := up.PushLarge(t.Context(), "library/large", "latest", mib, layers)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--database-url", testenv.PostgresURL(t), "--redis-url", testenv.RedisURL(t), "--data-dir", t.TempDir(),
		"--db-encryption-key", testenv.KeyFile(t)}
	return bin, up, img, common
}

func waitTask(t *testing.T, base, href string) {
	t.Helper()
	harness.WaitFor(t, "task "+href, func() bool {
		var task map[string]any
		api(t, "GET", base+href, nil, &task)
		if task["state"] == "failed" {
			t.Fatalf("task failed: %v", task["error"])
		}
		return task["state"] == "completed"
	})
}

// pull fetches the manifest and every blob of img through a registry as an anonymous
// container client does (a token from the challenge's realm for each request), checking
// digests.
func pull(ctx context.Context, registry, name, tag string, img upstream.Image) error {
	reg := &client.Registry{Base: registry, HTTP: http.DefaultClient, Accept: img.MediaType}
	if _, _, _, err := reg.Manifest(ctx, name, tag); err != nil {
		return err
	}
	for _, b := range img.Blobs() {
		if _, err := reg.Blob(ctx, name, b.Digest); err != nil {
			return err
		}
	}
	return nil
}

// TestSplitRolesSecrets runs api, worker and content with one key file against an upstream
// that requires credentials. The remote is created with a wrong password, which a PATCH (a
// task the worker runs) corrects; the content app then pulls through it, so each role opened
// what another sealed. No table and no log (at debug level) holds a secret in plaintext, and
// a role given another key refuses to start.
func TestSplitRolesSecrets(t *testing.T) {
	bin := harness.Binary(t)
	ctx := t.Context()
	const user, pass, wrong = "puller-Jw31", "right-Jw32", "wrong-Jw33"
	up, err := upstream.Start(ctx, upstream.Options{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	img, err := up.PushSmall(ctx, "team/app", "v1")
	if err != nil {
		t.Fatal(err)
	}

	dbURL := testenv.PostgresURL(t)
	common := []string{"--database-url", dbURL, "--redis-url", testenv.RedisURL(t), "--data-dir", t.TempDir(),
		"--db-encryption-key", testenv.KeyFile(t), "--log-level", "debug"}
	a := harness.StartRole(t, bin, "api", common...)
	w := harness.StartRole(t, bin, "worker", common...)
	c := harness.StartRole(t, bin, "content", common...)
	base := "http://" + a.Addr
	harness.WaitAPI(t, base)

	var remote map[string]any
	if code := api(t, "POST", base+"/pulp/api/v3/remotes/container/pull-through/",
		map[string]any{"name": "private", "url": up.URL(), "username": user, "password": wrong}, &remote); code != 201 {
		t.Fatalf("create remote: %d %v", code, remote)
	}
	var task map[string]string
	if code := api(t, "PATCH", base+remote["pulp_href"].(string), map[string]any{"password": pass}, &task); code != 202 {
		t.Fatalf("patch the password: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	if code := api(t, "POST", base+"/pulp/api/v3/distributions/container/pull-through/",
		map[string]any{"name": "private", "base_path": "private", "remote": remote["pulp_href"]}, &task); code != 202 {
		t.Fatalf("create distribution: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	harness.WaitFor(t, "the content app up", func() bool {
		resp, err := http.Get("http://" + c.Addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	if err := pull(ctx, "http://"+c.Addr, "private/team/app", "v1", img); err != nil {
		t.Fatalf("pull with the patched password: %v", err)
	}

	db, err := models.Open(dbURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	for _, table := range []string{"remotes", "tasks"} {
		var rows []map[string]any
		if err := db.Table(table).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			for col, v := range row {
				if s, ok := v.(string); ok && (strings.Contains(s, pass) || strings.Contains(s, wrong) || strings.Contains(s, user)) {
					t.Errorf("%s.%s holds a secret in plaintext: %q", table, col, s)
				}
			}
		}
	}
	for _, p := range []*harness.Role{a, w, c} {
		b, _ := os.ReadFile(p.Log)
		for _, secret := range []string{pass, wrong} {
			if strings.Contains(string(b), secret) {
				t.Errorf("log %s shows a password", p.Log)
			}
		}
	}

	// A content app given another key file refuses to start.
	other := append(append([]string{}, common...), "--db-encryption-key", testenv.KeyFile(t), "--listen", "127.0.0.1:0")
	out, err := exec.Command(bin, append([]string{"content"}, other...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "same --db-encryption-key") {
		t.Errorf("content with another key: err %v, output %q; want a refusal", err, out)
	}
}

// TestSplitRolesCutIdleBodies checks that the api and content roles both apply
// --body-idle-timeout: a request announcing 100,000 bytes of body that sends one is answered
// and its connection closed within 2 s with a timeout of 1 s.
func TestSplitRolesCutIdleBodies(t *testing.T) {
	bin := harness.Binary(t)
	common := []string{"--database-url", testenv.PostgresURL(t), "--redis-url", testenv.RedisURL(t),
		"--data-dir", t.TempDir(), "--body-idle-timeout", "1s", "--db-encryption-key", testenv.KeyFile(t)}
	for role, path := range map[string]string{"api": "/pulp/api/v3/remotes/container/pull-through/", "content": "/v2/library/x/blobs/uploads/"} {
		p := harness.StartRole(t, bin, role, common...)
		harness.WaitFor(t, role+" up", func() bool {
			conn, err := net.Dial("tcp", p.Addr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path)
		sent := time.Now()
		_ = conn.SetReadDeadline(sent.Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil || time.Since(sent) > 2*time.Second {
			t.Errorf("%s: connection closed after %v (err %v), want within 2 s", role, time.Since(sent), err)
		}
	}
}
