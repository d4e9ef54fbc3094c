package security

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestFinding1PrivateParent covers finding 1 of issue 6: making a pull-through distribution
// private must close the children it already created. A public pull-through distribution over
// the local Docker Hub serves pub/library/debian:10 anonymously; after a PATCH private=true,
// anonymous callers (and wrong credentials) get 401 for a new tag, the cached tag, digests,
// blobs and tags/list, over GET and HEAD, and /v2/_catalog no longer lists the child; the
// admin's Basic credentials still pull everything.
func TestFinding1PrivateParent(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		imgs, err := hub.PushDebianLike(ctx, "library/debian")
		if err != nil {
			t.Fatal(err)
		}
		ten, eleven := imgs[0], imgs[1]
		e := startServer(t, eng)
		ptHref := e.createCache(t, "pub", hub.URL(), nil, nil)
		const name = "pub/library/debian"

		e.reg.mustPull(t, name, "10", ten.ManifestDigest)
		if !slices.Contains(e.reg.catalog(t), name) {
			t.Fatalf("anonymous /v2/_catalog of the public cache does not list %s: the test proves nothing", name)
		}

		e.api.patch(t, ptHref, map[string]any{"private": true})
		if pt := e.api.Get(t, ptHref); pt["private"] != true {
			t.Fatalf("pull-through distribution private = %v after the PATCH", pt["private"])
		}

		// The registry reuses a name's resolution for up to a second (content/registry
		// DefaultResolveTTL): allow that long for the change to reach the name, no more.
		patched := time.Now()
		client.PollFor(t, 3*time.Second, "anonymous HEAD of the cached tag to answer 401 after the PATCH", func() (bool, string) {
			a := e.reg.do(t, http.MethodHead, "/v2/"+name+"/manifests/10")
			return a.Status == http.StatusUnauthorized, fmt.Sprintf("status %d", a.Status)
		})
		t.Logf("anonymous reads were refused %s after the PATCH's task completed", time.Since(patched).Round(time.Millisecond))

		before := hub.Counts()
		wrong := newRegClient(e.srv.URL, harness.Username, "wrong"+harness.Password)
		paths := []string{
			"/v2/" + name + "/manifests/11", // a new tag: never fetched
			"/v2/" + name + "/manifests/10", // the cached tag
			"/v2/" + name + "/manifests/" + ten.ManifestDigest,
			"/v2/" + name + "/manifests/" + eleven.ManifestDigest,
			"/v2/" + name + "/blobs/" + ten.Layers[0].Digest,
			"/v2/" + name + "/blobs/" + ten.Config.Digest,
			"/v2/" + name + "/tags/list",
		}
		for _, p := range paths {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				expectStatus(t, e.reg, method, p, http.StatusUnauthorized, "UNAUTHORIZED")
				expectStatus(t, wrong, method, p, http.StatusUnauthorized, "UNAUTHORIZED")
			}
		}
		if after := hub.Counts(); after.ManifestGets+after.ManifestHeads != before.ManifestGets+before.ManifestHeads {
			t.Errorf("anonymous requests to the private cache reached the upstream:\nbefore %+v\nafter  %+v", before, after)
		}
		if got := e.reg.catalog(t); slices.Contains(got, name) {
			t.Errorf("anonymous /v2/_catalog lists %s of a private pull-through distribution: %v", name, got)
		}

		// curl, as a user would probe it.
		if _, err := exec.LookPath("curl"); err == nil {
			url := e.srv.URL + "/v2/" + name + "/manifests/11"
			out, _ := exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
				"-H", "Accept: "+manifestAccept, url).Output()
			if got := strings.TrimSpace(string(out)); got != "401" {
				t.Errorf("anonymous curl %s: %s, want 401", url, got)
			}
			out, _ = exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
				"-u", harness.Username+":"+harness.Password, "-H", "Accept: "+manifestAccept, url).Output()
			if got := strings.TrimSpace(string(out)); got != "200" {
				t.Errorf("curl -u admin %s: %s, want 200", url, got)
			}
		}

		// The admin pulls everything.
		e.admin.mustPull(t, name, "11", eleven.ManifestDigest)
		e.admin.mustPull(t, name, "10", ten.ManifestDigest)
		for _, p := range paths {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				expectStatus(t, e.admin, method, p, http.StatusOK)
			}
		}
		if got := e.admin.catalog(t); !slices.Contains(got, name) {
			t.Errorf("the admin's /v2/_catalog does not list %s: %v", name, got)
		}
	})
}
