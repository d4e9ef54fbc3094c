package pullthrough

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestMirrorMode: with --mirror, unprefixed names are served as a registry mirror serves them.
// Docker's classic mirror requests (no ns) and containerd's (ns=docker.io) go to the default
// mirror's pull-through distribution, an ns with a mapping to its own, an unmapped ns is
// NAME_UNKNOWN; an image asked for without and with the prefix is the same child, fetched from
// the upstream once; podman with docker.io mirrored to the server pulls through it.
func TestMirrorMode(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub, quay := client.StartHub(t), client.StartHub(t)
		img, err := hub.PushSmall(ctx, "library/busybox", "latest")
		if err != nil {
			t.Fatal(err)
		}
		qimg, err := quay.PushSmall(ctx, "team/tool", "v1")
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng, "", "--mirror", "docker-cache", "--mirror", "quay.io=quay-cache")
		e.createCache(t, "docker-cache", "docker-cache", hub.URL(), nil, nil)
		e.createCache(t, "quay-cache", "quay", quay.URL(), nil, nil)

		// Docker's registry-mirrors: the unprefixed name, anonymous, through the token flow.
		hub.Reset()
		e.reg.mustPull(t, "library/busybox", "latest", img)
		first := hub.Counts()
		// The same image through the prefix is the same child: nothing more from upstream.
		e.reg.mustPull(t, "docker-cache/library/busybox", img.ManifestDigest, img)
		e.reg.mustPull(t, "library/busybox", img.ManifestDigest, img)
		if after := hub.Counts(); after.BlobGets != first.BlobGets {
			t.Errorf("the prefixed pull fetched blobs again: %+v, then %+v", first, after)
		}
		repos := e.api.List(t, "/pulp/api/v3/repositories/container/container/", nil)
		n := 0
		for _, r := range repos {
			if client.Str(r, "name") == "docker-cache/library/busybox" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d repositories docker-cache/library/busybox, want 1", n)
		}

		// containerd's hosts.toml mirrors add ns to every request, blobs included.
		for _, p := range []string{
			"/v2/library/busybox/manifests/latest?ns=docker.io",
			fmt.Sprintf("/v2/library/busybox/blobs/%s?ns=docker.io", img.Layers[0].Digest),
			"/v2/team/tool/manifests/v1?ns=quay.io",
			fmt.Sprintf("/v2/team/tool/blobs/%s?ns=quay.io", qimg.Layers[0].Digest),
		} {
			resp, err := e.regAdmin.Request(ctx, http.MethodGet, p, http.Header{"Accept": {client.ManifestAccept}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d", p, resp.StatusCode)
			}
		}
		// Never another upstream's image: an unmapped ns, or quay's name asked of docker.io.
		expectRegError(t, e.regAdmin, http.MethodGet, "/v2/library/busybox/manifests/latest?ns=ghcr.io", http.StatusNotFound, "NAME_UNKNOWN")
		expectRegError(t, e.regAdmin, http.MethodGet, "/v2/team/tool/manifests/v1?ns=docker.io", http.StatusNotFound, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")

		// podman with docker.io mirrored to the server.
		client.NeedTools(t, "podman")
		home := harness.NewClientHome(t, e.srv)
		home.PodmanEnv(t)
		conf := filepath.Join(home.Dir, ".containers", "registries.conf")
		mirrorConf := fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", e.srv.Addr)
		if err := os.WriteFile(conf, []byte(mirrorConf), 0o644); err != nil {
			t.Fatal(err)
		}
		home.Run(t, "podman", "pull", "docker.io/library/busybox:latest").Must(t)
	})
}
