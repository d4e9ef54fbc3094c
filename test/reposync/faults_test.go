package reposync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// checkStorage fails t unless every file under the server's blob storage holds the bytes of
// the digest it is stored under: nothing partial or unverified was kept.
func (e *env) checkStorage(t testing.TB) {
	t.Helper()
	root := filepath.Join(e.srv.DataDir, "storage", "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Name() {
			t.Errorf("storage holds %s with bytes of sha256:%s", p, got)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestSyncFailures checks that a sync that fails (the upstream goes down while blobs are
// downloading; the upstream sends corrupt blob bytes) fails its task with a description that
// says what failed, keeps the latest version as it was and stores nothing unverified; and
// that a sync run again once the upstream is back completes from what is already stored.
func TestSyncFailures(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		big, err := hub.PushLarge(ctx, "library/big", "1", 8, 2)
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)

		t.Run("upstream-down-mid-sync", func(t *testing.T) {
			remote := e.createRemote(t, "big", hub.URL(), "library/big", nil)
			repo := e.createRepo(t, "big", nil)
			v0 := e.latest(t, repo)
			hub.SetBlobThrottle(2 * upstream.MiB) // 4 MiB layers: two seconds each
			href := e.startSync(t, repo, map[string]any{"remote": remote})
			// The progress reports are visible while the task runs: wait until the manifest
			// is processed and the blobs are on their way, then cut the upstream.
			client.Poll(t, "the sync to process its manifest", func() (bool, string) {
				task := e.api.Get(t, href)
				r := reports(task)["sync.processing.manifest"]
				return client.Str(task, "state") == "running" && r != nil && r["done"] == float64(1) &&
					hub.CDNGets(big.Layers[0].Digest) > 0, fmt.Sprint(task["state"], task["progress_reports"])
			})
			hub.SetDown(true)
			task := e.waitFailed(t, href)
			hub.SetDown(false)
			hub.SetBlobThrottle(0)
			desc := fmt.Sprint(task["error"].(map[string]any)["description"])
			t.Logf("error: %s", desc)
			for _, want := range []string{"sync of repository big from remote big failed", "download blobs of library/big", "get blob library/big@sha256:"} {
				if !strings.Contains(desc, want) {
					t.Errorf("error description %q does not say %q", desc, want)
				}
			}
			for _, r := range task["progress_reports"].([]any) {
				if s := client.Str(r.(map[string]any), "state"); s == "running" {
					t.Errorf("progress report left running in a failed task: %v", r)
				}
			}
			if l := e.latest(t, repo); l != v0 {
				t.Errorf("latest version %s after a failed sync, want %s", l, v0)
			}
			e.checkStorage(t)
			var stored []string
			for _, b := range big.Blobs() {
				if e.storedBlob(t, b.Digest) {
					stored = append(stored, b.Digest)
				}
			}

			hub.Reset()
			task = e.sync(t, repo, map[string]any{"remote": remote})
			if got := created(task); len(got) != 1 {
				t.Fatalf("the retried sync created %v, want one version", got)
			}
			for _, d := range stored {
				if n := hub.BlobGets(d); n != 0 {
					t.Errorf("blob %s, stored by the failed sync, fetched again %d times", d, n)
				}
			}
			for _, b := range big.Blobs() {
				if !e.storedBlob(t, b.Digest) {
					t.Errorf("blob %s not stored after the retried sync", b.Digest)
				}
			}
			e.checkStorage(t)
		})

		t.Run("manifest-not-found", func(t *testing.T) {
			// A digest in includes that the upstream does not have: its GET answers 404.
			missing := "sha256:" + strings.Repeat("ab", 32)
			remote := e.createRemote(t, "missing", hub.URL(), "library/big", map[string]any{"includes": []string{missing}})
			repo := e.createRepo(t, "missing", nil)
			v0 := e.latest(t, repo)
			hub.Reset()
			task := e.waitFailed(t, e.startSync(t, repo, map[string]any{"remote": remote}))
			desc := fmt.Sprint(task["error"].(map[string]any)["description"])
			t.Logf("error: %s", desc)
			for _, want := range []string{"fetch manifest library/big@" + missing, "404"} {
				if !strings.Contains(desc, want) {
					t.Errorf("error description %q does not say %q", desc, want)
				}
			}
			if c := hub.Counts(); c.ManifestGets != 1 {
				t.Errorf("a 404 was asked %d times, want once (not retried)", c.ManifestGets)
			}
			if l := e.latest(t, repo); l != v0 {
				t.Errorf("latest version %s after a failed sync, want %s", l, v0)
			}
		})

		t.Run("corrupt-blob", func(t *testing.T) {
			img, err := hub.PushSmall(ctx, "library/small", "1")
			if err != nil {
				t.Fatal(err)
			}
			remote := e.createRemote(t, "small", hub.URL(), "library/small", nil)
			repo := e.createRepo(t, "small", nil)
			v0 := e.latest(t, repo)
			hub.SetCorrupt(true)
			task := e.waitFailed(t, e.startSync(t, repo, map[string]any{"remote": remote}))
			hub.SetCorrupt(false)
			desc := fmt.Sprint(task["error"].(map[string]any)["description"])
			t.Logf("error: %s", desc)
			if !strings.Contains(desc, "digest") || !strings.Contains(desc, "library/small") {
				t.Errorf("error description %q does not say the digest did not match", desc)
			}
			if l := e.latest(t, repo); l != v0 {
				t.Errorf("latest version %s after a failed sync, want %s", l, v0)
			}
			for _, b := range img.Blobs() {
				if e.storedBlob(t, b.Digest) {
					t.Errorf("blob %s stored from corrupt bytes", b.Digest)
				}
			}
			e.checkStorage(t)
			task = e.sync(t, repo, map[string]any{"remote": remote})
			if len(created(task)) != 1 {
				t.Errorf("sync after the upstream was fixed created %v", created(task))
			}
		})
	})
}

// TestSyncWithPull checks that a sync and a pull through the cache of the same blob at the
// same moment make one upstream GET of it, whichever starts first.
func TestSyncWithPull(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		e := startServer(t, eng)
		e.api.CreatePullThrough(t, "docker-cache", "docker-cache", hub.URL(), nil, nil)
		for i, pullFirst := range []bool{true, false} {
			name := fmt.Sprintf("library/big%d", i)
			img, err := hub.PushLarge(ctx, name, "1", 8, 1)
			if err != nil {
				t.Fatal(err)
			}
			layer := img.Layers[0].Digest
			remote := e.createRemote(t, name, hub.URL(), name, nil)
			repo := e.createRepo(t, name, nil)
			hub.Reset()
			hub.SetBlobThrottle(4 * upstream.MiB)
			var wg sync.WaitGroup
			var pullErr error
			pull := func() {
				defer wg.Done()
				_, pullErr = e.reg.Blob(ctx, "docker-cache/"+name, layer)
			}
			var href string
			wg.Add(1)
			if pullFirst {
				go pull()
				client.Poll(t, "the pull to reach the upstream", func() (bool, string) { return hub.CDNGets(layer) > 0, "" })
				href = e.startSync(t, repo, map[string]any{"remote": remote})
			} else {
				href = e.startSync(t, repo, map[string]any{"remote": remote})
				client.Poll(t, "the sync to reach the upstream", func() (bool, string) { return hub.CDNGets(layer) > 0, "" })
				// The cache needs the manifest before the blob, as a client pulls.
				if _, _, _, err := e.reg.Manifest(ctx, "docker-cache/"+name, "1"); err != nil {
					t.Fatal(err)
				}
				go pull()
			}
			e.api.WaitTask(t, href)
			wg.Wait()
			hub.SetBlobThrottle(0)
			if pullErr != nil {
				t.Fatalf("pull first %v: pull: %v", pullFirst, pullErr)
			}
			if front, cdn := hub.BlobGets(layer), hub.CDNGets(layer); front != 1 || cdn != 1 {
				t.Errorf("pull first %v: layer fetched %d times at the front and %d at the CDN, want 1 and 1", pullFirst, front, cdn)
			}
		}
	})
}

// TestSyncThrottled checks that a sync the upstream throttles (429 with Retry-After) waits as
// long as it is asked to, retries, and completes.
func TestSyncThrottled(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		if _, err := hub.PushSmall(ctx, "library/app", "1"); err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		remote := e.createRemote(t, "app", hub.URL(), "library/app", nil)
		repo := e.createRepo(t, "app", nil)
		hub.Reset()
		hub.SetRetryAfter(2 * time.Second)
		hub.SetTooManyRequests(true)
		href := e.startSync(t, repo, map[string]any{"remote": remote})
		client.Poll(t, "the upstream to throttle the sync", func() (bool, string) { return hub.Counts().TooManyRequests > 0, "" })
		hub.SetTooManyRequests(false)
		task := e.api.WaitTask(t, href)
		if n := hub.Counts().TooManyRequests; n != 1 {
			t.Errorf("%d requests throttled, want 1 (the retry waits for Retry-After)", n)
		}
		started, _ := time.Parse(time.RFC3339Nano, client.Str(task, "started_at"))
		finished, _ := time.Parse(time.RFC3339Nano, client.Str(task, "finished_at"))
		if d := finished.Sub(started); d < 1900*time.Millisecond {
			t.Errorf("the throttled sync took %s, less than the 2 s Retry-After", d)
		}
		if len(created(task)) != 1 {
			t.Errorf("the throttled sync created %v", created(task))
		}
	})
}

// TestSyncCredentials syncs from an upstream whose token realm wants credentials: with the
// remote's username and password the sync completes; with a wrong password it fails with the
// upstream's refusal; the password appears in no task and in no log line.
func TestSyncCredentials(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		const user, pass, wrong = "syncer", "s3cret-sync-password", "wr0ng-sync-password"
		client.NeedTools(t, "docker-registry", "skopeo", "busybox")
		hub, err := upstream.Start(ctx, upstream.Options{Username: user, Password: pass})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hub.Close() })
		if _, err := hub.PushSmall(ctx, "private/app", "1"); err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		good := e.createRemote(t, "good", hub.URL(), "private/app", map[string]any{"username": user, "password": pass})
		bad := e.createRemote(t, "bad", hub.URL(), "private/app", map[string]any{"username": user, "password": wrong})
		repo := e.createRepo(t, "private", nil)
		task := e.waitFailed(t, e.startSync(t, repo, map[string]any{"remote": bad}))
		desc := fmt.Sprint(task["error"].(map[string]any)["description"])
		t.Logf("error: %s", desc)
		if !strings.Contains(desc, "401") && !strings.Contains(desc, "token") {
			t.Errorf("a refused token does not show in %q", desc)
		}
		if task = e.sync(t, repo, map[string]any{"remote": good}); len(created(task)) != 1 {
			t.Errorf("sync with credentials created %v", created(task))
		}
		var all strings.Builder
		for _, tk := range e.api.List(t, "/pulp/api/v3/tasks/", nil) {
			raw, _ := json.Marshal(tk)
			all.Write(raw)
		}
		if log, err := os.ReadFile(e.srv.LogFile); err == nil {
			all.Write(log)
		}
		for _, secret := range []string{pass, wrong} {
			if strings.Contains(all.String(), secret) {
				t.Errorf("the password %q appears in a task or in the server's log", secret)
			}
		}
	})
}

// TestSyncCancel cancels a running sync (PATCH {"state": "canceled"}): the task ends canceled
// while its blobs are still downloading, and the latest version stays as it was.
func TestSyncCancel(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		big, err := hub.PushLarge(ctx, "library/big", "1", 8, 8)
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		// One download at a time, a second each: the sync takes eight seconds unless canceled.
		remote := e.createRemote(t, "big", hub.URL(), "library/big", map[string]any{"download_concurrency": 1})
		repo := e.createRepo(t, "big", nil)
		v0 := e.latest(t, repo)
		hub.SetBlobThrottle(upstream.MiB)
		defer hub.SetBlobThrottle(0)
		href := e.startSync(t, repo, map[string]any{"remote": remote})
		client.Poll(t, "the sync to download", func() (bool, string) { return hub.CDNGets(big.Layers[0].Digest) > 0, "" })
		e.api.Do(t, "PATCH", href, map[string]any{"state": "canceled"})
		var task map[string]any
		client.Poll(t, "the task to end", func() (bool, string) {
			task = e.api.Get(t, href)
			s := client.Str(task, "state")
			return s != "running" && s != "canceling" && s != "waiting", s
		})
		if s := client.Str(task, "state"); s != "canceled" {
			t.Fatalf("canceled sync ended %s: %v", s, task["error"])
		}
		if got := hub.Counts().CDNGets; got >= len(big.Blobs()) {
			t.Errorf("the canceled sync went on to download all %d blobs", got)
		}
		if l := e.latest(t, repo); l != v0 {
			t.Errorf("latest version %s after a canceled sync, want %s", l, v0)
		}
		e.checkStorage(t)
	})
}
