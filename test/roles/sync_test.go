package roles

import (
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
)

// TestSplitRolesSyncWithPull runs api, worker and content apart: a sync on the worker and a
// pull through the content app of the same blob at the same moment make one upstream GET of
// it (the fill lock in Redis), and the sync completes with the blob the pull stored.
func TestSplitRolesSyncWithPull(t *testing.T) {
	ctx := t.Context()
	bin, up, img, common := splitSetup(t, 16, 1)
	a := harness.StartRole(t, bin, "api", common...)
	harness.StartRole(t, bin, "worker", common...)
	c := harness.StartRole(t, bin, "content", common...)
	base := "http://" + a.Addr
	harness.WaitAPI(t, base)
	createCache(t, base, up.URL())
	var obj map[string]any
	var task map[string]string
	if code := api(t, "POST", base+"/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": "large", "url": up.URL(), "upstream_name": "library/large"}, &obj); code != 201 {
		t.Fatalf("create remote: %d %v", code, obj)
	}
	remote := obj["pulp_href"].(string)
	if code := api(t, "POST", base+"/pulp/api/v3/repositories/container/container/", map[string]any{"name": "large"}, &obj); code != 201 {
		t.Fatalf("create repository: %d %v", code, obj)
	}
	repo := obj["pulp_href"].(string)
	harness.WaitContent(t, c.Addr)

	layer := img.Layers[0].Digest
	up.Reset()
	up.SetBlobThrottle(8 << 20) // two seconds for the layer: the sync starts while the pull fills
	pulled := make(chan error, 1)
	go func() { pulled <- pull(ctx, "http://"+c.Addr, "hub/library/large", "latest", img) }()
	harness.WaitFor(t, "the pull to reach the upstream", func() bool { return up.CDNGets(layer) > 0 })
	if code := api(t, "POST", base+repo+"sync/", map[string]any{"remote": remote}, &task); code != 202 {
		t.Fatalf("sync: %d %v", code, task)
	}
	waitTask(t, base, task["task"])
	if err := <-pulled; err != nil {
		t.Fatal(err)
	}
	up.SetBlobThrottle(0)
	if n := up.CDNGets(layer); n != 1 {
		t.Errorf("the layer was fetched %d times by a pull and a sync in two processes, want 1", n)
	}
	var got map[string]any
	api(t, "GET", base+task["task"], nil, &got)
	if created, _ := got["created_resources"].([]any); len(created) != 1 || !strings.HasSuffix(created[0].(string), "/versions/1/") {
		t.Errorf("the sync created %v, want version 1", got["created_resources"])
	}
}
