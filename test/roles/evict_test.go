package roles

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestSplitRolesEvict runs api, worker and content apps apart, with the quota on the worker:
// A is pulled through one content app, B through another, then A again through the second.
// Both stop, each writing the pull times it kept (--last-pull-flush far away) and the later
// time of A winning whichever writes last. Pulling C through a third content app takes the
// shared storage over the high watermark: the worker's evict task removes B, the least
// recently pulled, and its bytes leave the storage, while A and C stay.
func TestSplitRolesEvict(t *testing.T) {
	ctx := t.Context()
	bin, up, a, common := splitSetup(t, 1, 1)
	b, c := pushMiB(t, up, "library/b"), pushMiB(t, up, "library/c")
	size := int64(0)
	for _, img := range []upstream.Image{a, b, c} {
		n := img.Size
		for _, bl := range img.Blobs() {
			n += bl.Size
		}
		size = max(size, n)
	}
	var dataDir string
	for i, arg := range common {
		if arg == "--data-dir" {
			dataDir = common[i+1]
		}
	}
	stored := func(img upstream.Image) bool {
		hex := strings.TrimPrefix(img.Layers[0].Digest, "sha256:")
		_, err := os.Stat(filepath.Join(dataDir, "storage", "blobs", "sha256", hex[:2], hex))
		return err == nil
	}
	contentArgs := append([]string{"--last-pull-flush", "1h"}, common...)
	api1 := harness.StartRole(t, bin, "api", common...)
	harness.StartRole(t, bin, "worker", append([]string{"--storage-quota", strconv.FormatInt(size*27/10, 10),
		"--storage-quota-interval", "100ms"}, common...)...)
	c1 := harness.StartRole(t, bin, "content", contentArgs...)
	c2 := harness.StartRole(t, bin, "content", contentArgs...)
	base := "http://" + api1.Addr
	harness.WaitAPI(t, base)
	createCache(t, base, up.URL())
	harness.WaitContent(t, c1.Addr)
	harness.WaitContent(t, c2.Addr)

	recorded := func(img upstream.Image, version int) {
		t.Helper()
		harness.WaitFor(t, fmt.Sprintf("%s at version %d", img.Name, version), func() bool {
			return latestVersion(t, base, "hub/"+img.Name) == version
		})
	}
	mustPull := func(c *harness.Role, img upstream.Image) {
		t.Helper()
		if err := pull(ctx, "http://"+c.Addr, "hub/"+img.Name, "latest", img); err != nil {
			t.Fatal(err)
		}
	}
	mustPull(c1, a)
	recorded(a, 1)
	mustPull(c2, b)
	recorded(b, 1)
	mustPull(c2, a)
	for _, c := range []*harness.Role{c2, c1} {
		c.Stop()
	}

	c3 := harness.StartRole(t, bin, "content", contentArgs...)
	harness.WaitContent(t, c3.Addr)
	mustPull(c3, c)
	recorded(c, 1)
	recorded(b, 2)
	if latestVersion(t, base, "hub/"+a.Name) != 1 || latestVersion(t, base, "hub/"+c.Name) != 1 {
		t.Errorf("A or C changed: latest versions %d and %d, want 1 and 1",
			latestVersion(t, base, "hub/"+a.Name), latestVersion(t, base, "hub/"+c.Name))
	}
	harness.WaitFor(t, "B's layer to leave the storage", func() bool { return !stored(b) })
	if !stored(a) || !stored(c) {
		t.Errorf("A's layer stored: %v, C's: %v; want both", stored(a), stored(c))
	}
	tasks := finishedEvictTasks(t, base)
	if len(tasks) != 1 || tasks[0].State != "completed" || len(tasks[0].CreatedResources) != 1 ||
		!strings.HasSuffix(tasks[0].CreatedResources[0], "/versions/2/") {
		t.Errorf("evict tasks: %+v, want one completed that created B's version 2", tasks)
	}
}

// evictTask is an evict task as the API shows it.
type evictTask struct {
	State            string   `json:"state"`
	CreatedResources []string `json:"created_resources"`
}

// finishedEvictTasks waits until the API at base shows evict tasks, none of them waiting or
// running, and returns them.
func finishedEvictTasks(t *testing.T, base string) []evictTask {
	t.Helper()
	var tasks struct {
		Results []evictTask `json:"results"`
	}
	harness.WaitFor(t, "the evict tasks to finish", func() bool {
		api(t, "GET", base+"/pulp/api/v3/tasks/?name=pulpgo.app.tasks.evict", nil, &tasks)
		for _, r := range tasks.Results {
			if r.State == "waiting" || r.State == "running" {
				return false
			}
		}
		return len(tasks.Results) > 0
	})
	return tasks.Results
}

// latestVersion returns the number of the latest version of the repository named name, or
// -1 when there is none.
func latestVersion(t *testing.T, base, name string) int {
	t.Helper()
	var repos struct {
		Results []struct {
			LatestVersionHref string `json:"latest_version_href"`
		} `json:"results"`
	}
	api(t, "GET", base+"/pulp/api/v3/repositories/container/container/?name="+name, nil, &repos)
	if len(repos.Results) != 1 {
		return -1
	}
	href := strings.TrimSuffix(repos.Results[0].LatestVersionHref, "/")
	n, err := strconv.Atoi(href[strings.LastIndex(href, "/")+1:])
	if err != nil {
		return -1
	}
	return n
}
