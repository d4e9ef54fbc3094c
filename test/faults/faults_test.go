package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/tmpfs"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// expected is the expectation, the matrix's second column.
const expected = "503 with the protocol's body, no hang; pull, sync, push within 10 s of recovery; nothing partial"

// TestFaults runs the cases on one topology (its data directory on a small tmpfs when root, for
// the storage-full case), one after the other; each leaves every process running.
func TestFaults(t *testing.T) {
	client.NeedTools(t, "docker-registry", "redis-server", "redis-cli")
	hub := client.StartHub(t)
	data := ""
	if os.Geteuid() == 0 {
		data = tmpfs.Mount(t, 256)
	}
	tp := startTopology(t, hub, data)
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			tp.newRecovery(t)
			f(t)
		})
	}
	run("kill-content-during-fill", func(t *testing.T) { killContentDuringFill(t, tp) })
	run("kill-content-during-push", func(t *testing.T) { killContentDuringPush(t, tp) })
	run("kill-worker-during-sync", func(t *testing.T) { killWorkerDuringSync(t, tp) })
	run("kill-api-during-posts", func(t *testing.T) { killAPIDuringPosts(t, tp) })
	run("postgres-restart", func(t *testing.T) { restartPostgres(t, tp) })
	run("redis-restart-empty", func(t *testing.T) { restartRedisEmpty(t, tp) })
	run("storage-full-fs", func(t *testing.T) {
		if data == "" {
			t.Skip("the data directory is on a tmpfs only as root")
		}
		storageFull(t, tp, data, "storage full (filesystem)")
	})
}

// fault is what a case saw; seen collects its requests.
func report(t *testing.T, name string, ld *load, extra ...string) {
	t.Helper()
	ld.seen.check(t)
	parts := append([]string{ld.seen.summary()}, extra...)
	matrix(t, name, expected, strings.Join(parts, "; "))
}

func killContentDuringFill(t *testing.T, tp *topology) {
	ctx := t.Context()
	img, err := tp.hub.PushLarge(ctx, tp.name("library/fill"), "latest", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	layer := img.Layers[0].Digest
	c1, c2 := tp.contents[0], tp.contents[1]
	tp.hub.SetBlobThrottle(1 << 20) // eight seconds for the layer
	defer tp.hub.SetBlobThrottle(0)
	pulled := make(chan error, 1)
	go func() { pulled <- tp.pull(ctx, c1, img) }()
	harness.WaitFor(t, "the fill of "+layer+" staging", func() bool {
		return tp.hub.CDNGets(layer) > 0 && len(stagingParts(tp.data)) > 0
	})
	time.Sleep(time.Second)
	dead := stagingParts(tp.data)
	ld := tp.startLoad(t, true, c2)
	c1.Kill()
	clientErr := <-pulled
	if clientErr == nil {
		t.Error("the pull through the killed content process succeeded")
	}
	tp.hub.SetBlobThrottle(0)
	// The other content process serves the blob once the dead process's fill lock expired.
	start := time.Now()
	otherCtx, cancel := context.WithTimeout(ctx, requestDeadline)
	err = tp.pull(otherCtx, c2, img)
	cancel()
	took := time.Since(start)
	if err != nil {
		t.Errorf("pull through the other content process after the kill: %v", err)
	}
	ld.stop()
	c1.Restart(t)
	harness.WaitContent(t, c1.Addr)
	rec := tp.recover(t)
	var left []string
	for _, p := range dead {
		if _, err := os.Stat(p); err == nil {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		t.Errorf("the restarted process left the dead fill's staging files: %v", left)
	}
	bad := badBlobs(t, tp.data)
	if len(bad) > 0 {
		t.Errorf("blobs in storage without their digest: %v", bad)
	}
	if err := tp.pull(ctx, c1, img); err != nil {
		t.Errorf("pull through the restarted process: %v", err)
	}
	report(t, "kill -9 content during a fill", ld,
		fmt.Sprintf("client of the killed process: %s", errWord(clientErr)),
		fmt.Sprintf("other content process served the blob after %.1fs", took.Seconds()),
		fmt.Sprintf("dead staging files left %d of %d", len(left), len(dead)), rec,
		fmt.Sprintf("partial blobs %d", len(bad)))
}

func errWord(err error) string {
	if err == nil {
		return "no error"
	}
	return "error"
}

func killContentDuringPush(t *testing.T, tp *topology) {
	ctx := t.Context()
	c1, c2 := tp.contents[0], tp.contents[1]
	name := tp.name("team/push")
	stop := make(chan struct{})
	var once sync.Once
	sent := make(chan struct{})
	type result struct {
		p   pushed
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := tp.push(ctx, c1, name, 8<<20, func(r io.Reader) io.Reader {
			return &signalReader{throttled: throttled{r: r, left: 4 << 20, stop: stop}, at: func() { once.Do(func() { close(sent) }) }}
		})
		done <- result{p, err}
	}()
	select {
	case <-sent:
	case <-time.After(requestDeadline):
		t.Fatal("the push did not send half its layer")
	}
	time.Sleep(300 * time.Millisecond)
	ld := tp.startLoad(t, true, c2)
	c1.Kill()
	close(stop)
	r := <-done
	if r.err == nil {
		t.Error("the push through the killed content process succeeded")
	}
	ld.stop()
	// Nothing of it is visible through the other content process.
	reg := &client.Registry{Base: c2.URL(), HTTP: tp.http, User: harness.Username, Pass: harness.Password}
	partial := 0
	if _, _, _, err := reg.Manifest(ctx, name, "v1"); !isStatus(err, http.StatusNotFound) {
		partial++
		t.Errorf("manifest of the interrupted push: %v, want 404", err)
	}
	if _, err := reg.Blob(ctx, name, r.p.layer); !isStatus(err, http.StatusNotFound) && err != nil {
		partial++
		t.Errorf("layer of the interrupted push: %v, want 404 or the whole blob", err)
	}
	bad := badBlobs(t, tp.data)
	partial += len(bad)
	if len(bad) > 0 {
		t.Errorf("blobs in storage without their digest: %v", bad)
	}
	c1.Restart(t)
	harness.WaitContent(t, c1.Addr)
	rec := tp.recover(t)
	if _, err := tp.push(ctx, c1, name, 1<<20, nil); err != nil {
		t.Errorf("the push again after the restart: %v", err)
	} else {
		// The other process reuses its resolution of a name for DefaultResolveTTL (1 s).
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, _, _, err = reg.Manifest(ctx, name, "v1"); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("the pushed manifest through the other process: %v", err)
		}
	}
	report(t, "kill -9 content during a push", ld, "client of the killed process: "+errWord(r.err), rec,
		fmt.Sprintf("partial objects %d", partial))
}

// signalReader is a throttled reader that calls at once its n bytes are sent.
type signalReader struct {
	throttled
	at func()
}

func (s *signalReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		s.at()
	}
	return s.throttled.Read(p)
}

func isStatus(err error, code int) bool {
	var re *client.RegistryError
	return errors.As(err, &re) && re.Status == code
}

func killWorkerDuringSync(t *testing.T, tp *topology) {
	ctx := t.Context()
	img, err := tp.hub.PushLarge(ctx, tp.name("library/sync"), "latest", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	repo, remote := tp.syncRepo(t, img.Name)
	tp.hub.SetBlobThrottle(1 << 20)
	defer tp.hub.SetBlobThrottle(0)
	href, err := tp.startSync(repo, remote)
	if err != nil {
		t.Fatal(err)
	}
	// The worker running it: the one whose running tasks (the tasks list's worker filter) hold it.
	var victim *harness.Role
	var state string
	running := func() bool {
		state, _ = tp.taskState(href)
		if state != "running" || tp.hub.CDNGets(img.Layers[0].Digest) == 0 {
			return false
		}
		for i, p := range tp.workers {
			var workers, tasks struct {
				Results []map[string]any `json:"results"`
			}
			tp.mustAPI(t, "GET", "/pulp/api/v3/workers/?name="+tp.workerNames[i], nil, 200, &workers)
			if len(workers.Results) != 1 {
				continue
			}
			tp.mustAPI(t, "GET", "/pulp/api/v3/tasks/?state=running&worker="+url.QueryEscape(client.Str(workers.Results[0], "pulp_href")), nil, 200, &tasks)
			for _, task := range tasks.Results {
				if task["pulp_href"] == href {
					victim = p
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(requestDeadline); !running(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sync is not running on a worker and fetching: state %q, %d CDN GETs of its layer", state,
				tp.hub.CDNGets(img.Layers[0].Digest))
		}
	}
	ld := tp.startLoad(t, true, tp.contents...)
	victim.Kill()
	// Restarted under the same --app-name: it fails the killed run's task at once.
	victim.Restart(t)
	restarted := time.Now()
	tp.hub.SetBlobThrottle(0)
	// A new sync of the same repository, dispatched at once, completes within 10 s.
	again, err := tp.startSync(repo, remote)
	// The killed run's task fails as soon as the worker is back under its name.
	state = tp.waitTask(t, href, time.Minute)
	ended := time.Since(restarted)
	againState := ""
	if err == nil {
		againState = tp.waitTask(t, again, recoveryBound-time.Since(restarted))
	}
	againTook := time.Since(restarted)
	if err != nil || againState != "completed" || againTook > recoveryBound {
		t.Errorf("a new sync of the repository: %v, state %q %s after the restart; want completed within %s",
			err, againState, againTook.Round(time.Millisecond), recoveryBound)
	}
	if state != "failed" {
		t.Errorf("the killed sync's task is %q a minute after the restart, want failed", state)
	}
	_, task := tp.taskState(href)
	if created, _ := task["created_resources"].([]any); len(created) != 0 {
		t.Errorf("the killed task created %v", created)
	}
	ld.stop()
	eventually := againState
	if err == nil && !final(againState) {
		eventually = tp.waitTask(t, again, time.Minute)
	}
	if eventually == "completed" {
		if v := tp.latestVersion(t, repo); v != 1 {
			t.Errorf("the repository is at version %d after the new sync, want 1 (none from the killed task)", v)
		}
	}
	rec := tp.recover(t)
	report(t, "kill -9 worker during a sync", ld,
		fmt.Sprintf("killed task %q %.1fs after the restart", state, ended.Seconds()),
		fmt.Sprintf("new sync %q at %.1fs (then %q)", againState, againTook.Seconds(), eventually), rec)
}

func killAPIDuringPosts(t *testing.T, tp *topology) {
	ctx := t.Context()
	var repos [][2]string
	for range 3 {
		img, err := tp.hub.PushSmall(ctx, tp.name("library/post"), "latest")
		if err != nil {
			t.Fatal(err)
		}
		r, m := tp.syncRepo(t, img.Name)
		repos = append(repos, [2]string{r, m})
	}
	ld := tp.startLoad(t, false, tp.contents...)
	var mu sync.Mutex
	var tasks []string
	created := map[string]int{} // repository name: the POST's status (0: no answer)
	postCtx, stopPosts := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; postCtx.Err() == nil; n++ {
				if (n+i)%2 == 0 {
					r := repos[(n+i)%len(repos)]
					code, b, err, took := tp.apiDo("POST", r[0]+"sync/", map[string]any{"remote": r[1]})
					ld.seen.record("api", code, b, err, took)
					if code == http.StatusAccepted {
						mu.Lock()
						tasks = append(tasks, client.Str(client.DecodeObject(t, b), "task"))
						mu.Unlock()
					}
				} else {
					name := tp.name("posted")
					code, b, err, took := tp.apiDo("POST", "/pulp/api/v3/repositories/container/container/", map[string]any{"name": name})
					ld.seen.record("api", code, b, err, took)
					mu.Lock()
					created[name] = code
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	tp.api.Kill()
	time.Sleep(500 * time.Millisecond)
	tp.api.Restart(t)
	harness.WaitAPI(t, tp.api.URL())
	restarted := time.Now()
	time.Sleep(500 * time.Millisecond)
	stopPosts()
	wg.Wait()
	ld.stop()
	rec := tp.recover(t)
	_ = restarted
	states := map[string]int{}
	for _, href := range tasks {
		state := tp.waitTask(t, href, time.Minute)
		states[state]++
		if !final(state) {
			t.Errorf("task %s is %q a minute after the api's restart, want a final state", href, state)
		}
	}
	partial := 0
	for name, code := range created {
		var list struct {
			Results []map[string]any `json:"results"`
		}
		tp.mustAPI(t, "GET", "/pulp/api/v3/repositories/container/container/?name="+name, nil, 200, &list)
		switch {
		case len(list.Results) > 1:
			partial++
			t.Errorf("repository %s created %d times", name, len(list.Results))
		case code == http.StatusCreated && len(list.Results) == 0:
			t.Errorf("repository %s answered 201 but is absent", name)
		case len(list.Results) == 1 && !strings.HasSuffix(client.Str(list.Results[0], "latest_version_href"), "/versions/0/"):
			partial++
			t.Errorf("repository %s is not whole: %v", name, list.Results[0])
		}
	}
	report(t, "kill -9 api during POSTs", ld, fmt.Sprintf("%d tasks dispatched, final states %v", len(tasks), states),
		fmt.Sprintf("%d creates, partial %d", len(created), partial), rec)
}

func restartPostgres(t *testing.T, tp *topology) {
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			ld := tp.startLoad(t, true, tp.contents...)
			time.Sleep(300 * time.Millisecond)
			tp.pg.Stop(t, mode)
			time.Sleep(3 * time.Second)
			tp.pg.Start(t)
			ld.stop()
			rec := tp.recover(t)
			bad := badBlobs(t, tp.data)
			if len(bad) > 0 {
				t.Errorf("blobs in storage without their digest: %v", bad)
			}
			report(t, "PostgreSQL restarted ("+mode+" shutdown, down 3 s)", ld, rec, fmt.Sprintf("partial blobs %d", len(bad)))
		})
	}
}

func restartRedisEmpty(t *testing.T, tp *topology) {
	ctx := t.Context()
	var imgs []upstream.Image
	var tasks, repos []string
	tp.hub.SetBlobThrottle(1 << 20)
	defer tp.hub.SetBlobThrottle(0)
	for range 4 {
		img, err := tp.hub.PushLarge(ctx, tp.name("library/redis"), "latest", 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		repo, remote := tp.syncRepo(t, img.Name)
		// Two syncs of each repository: the second waits for the first.
		for range 2 {
			href, err := tp.startSync(repo, remote)
			if err != nil {
				t.Fatal(err)
			}
			imgs, tasks, repos = append(imgs, img), append(tasks, href), append(repos, repo)
		}
	}
	harness.WaitFor(t, "a sync running and fetching", func() bool {
		for _, h := range tasks {
			if s, _ := tp.taskState(h); s == "running" && tp.hub.CDNGets(imgs[0].Layers[0].Digest) > 0 {
				return true
			}
		}
		return false
	})
	before := map[string]int{}
	for _, h := range tasks {
		s, _ := tp.taskState(h)
		before[s]++
	}
	ld := tp.startLoad(t, true, tp.contents...)
	tp.redis.Kill()
	time.Sleep(2 * time.Second)
	tp.redis.Start(t)
	ld.stop()
	tp.hub.SetBlobThrottle(0)
	rec := tp.recover(t)
	after := map[string]int{}
	twice := 0
	allowed := map[string]int{} // fetches of an image's layer: one, and one more per failed sync of it
	for i, h := range tasks {
		state := tp.waitTask(t, h, time.Minute)
		after[state]++
		if !final(state) {
			t.Errorf("task %s is %q a minute after Redis came back, want a final state (none lost)", h, state)
		}
		allowed[imgs[i].Name] = max(allowed[imgs[i].Name], 1)
		if state == "failed" {
			allowed[imgs[i].Name]++
		}
		if state == "completed" {
			if v := tp.latestVersion(t, repos[i]); v != 1 {
				t.Errorf("%s is at version %d after two syncs of one image, want 1", repos[i], v)
			}
		}
	}
	for i := 0; i < len(imgs); i += 2 {
		if n := tp.hub.CDNGets(imgs[i].Layers[0].Digest); n > allowed[imgs[i].Name] {
			twice++
			t.Errorf("the layer of %s was fetched %d times by its two syncs (%d failed): a sync ran twice", imgs[i].Name, n,
				allowed[imgs[i].Name]-1)
		}
	}
	report(t, "Redis restarted empty (down 2 s)", ld, fmt.Sprintf("tasks before %v, after %v, ran twice %d", before, after, twice), rec)
}

// storageFull fills the filesystem below dir and, during: a cold pull, a push and a sync;
// then frees it and checks the recovery.
func storageFull(t *testing.T, tp *topology, dir, name string) {
	ctx := t.Context()
	img, err := tp.hub.PushLarge(ctx, tp.name("library/full"), "latest", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	repo, remote := tp.syncRepo(t, img.Name)
	filler := tmpfs.Fill(t, dir, 0)
	free := func() { filler.Remove(t) }
	ld := tp.startLoad(t, true, tp.contents...)
	// A cold pull, a push: 503 UNAVAILABLE expected.
	recordErr := func(start time.Time, err error) {
		var re *client.RegistryError
		switch {
		case err == nil:
			ld.seen.record("registry", 200, nil, nil, time.Since(start))
		case errors.As(err, &re):
			ld.seen.record("registry", re.Status, []byte(re.Body), nil, time.Since(start))
		default:
			ld.seen.record("registry", 0, nil, err, time.Since(start))
		}
	}
	for i := range 2 {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, requestDeadline)
		err := tp.pull(pctx, tp.contents[i], img)
		cancel()
		recordErr(start, err)
		start = time.Now()
		pctx, cancel = context.WithTimeout(ctx, requestDeadline)
		_, err = tp.push(pctx, tp.contents[i], tp.name("team/full"), 1<<20, nil)
		cancel()
		recordErr(start, err)
	}
	href, err := tp.startSync(repo, remote)
	syncState := ""
	if err == nil {
		syncState = tp.waitTask(t, href, requestDeadline)
	}
	ld.stop()
	bad := badBlobs(t, tp.data)
	if len(bad) > 0 {
		t.Errorf("blobs in storage without their digest: %v", bad)
	}
	free()
	if err == nil && !final(syncState) {
		// A sync is a task, not a request: it may retry a store that hangs (weed waits for a
		// volume it cannot grow) and end once space is back; it must end, whole.
		after := tp.waitTask(t, href, time.Minute)
		if !final(after) {
			t.Errorf("the sync started during the full storage is %q a minute after the space was freed, want a final state", after)
		}
		syncState += " then " + after + " after the space was freed"
	}
	rec := tp.recover(t)
	if err := tp.pull(ctx, tp.contents[0], img); err != nil {
		t.Errorf("the cold pull after the space was freed: %v", err)
	}
	report(t, name, ld, fmt.Sprintf("sync during: %q", syncState), rec, fmt.Sprintf("partial blobs %d", len(bad)))
}
