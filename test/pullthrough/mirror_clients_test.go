package pullthrough

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// startBusyboxHub starts a fake Docker Hub holding library/busybox:latest (PushSmall).
func startBusyboxHub(t testing.TB) (*upstream.Upstream, upstream.Image) {
	t.Helper()
	hub := client.StartHub(t)
	img, err := hub.PushSmall(client.Context(t), "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	return hub, img
}

// deadAddr returns a loopback host:port nothing listens on: a free port, released.
func deadAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

// recorder is a reverse proxy in front of the server that records each request line (method
// and request URI, query included), to show what a client sent.
type recorder struct {
	URL string // http://127.0.0.1:PORT
	mu  sync.Mutex
	log []string
}

// startRecorder starts a recorder forwarding to target, closed when t ends.
func startRecorder(t testing.TB, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.log = append(rec.log, r.Method+" "+r.URL.RequestURI())
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// registryRequests returns the recorded requests to /v2/ below it (not the ping, not /token/),
// and clears the record.
func (rec *recorder) registryRequests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, l := range rec.log {
		if _, uri, _ := strings.Cut(l, " "); strings.HasPrefix(uri, "/v2/") && uri != "/v2/" && !strings.HasPrefix(uri, "/v2/?") {
			out = append(out, l)
		}
	}
	rec.log = nil
	return out
}

// checkNS fails t unless every request carries ns=host.
func checkNS(t testing.TB, reqs []string, host string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("no registry request recorded for %s", host)
	}
	for _, l := range reqs {
		_, uri, _ := strings.Cut(l, " ")
		u, err := url.Parse(uri)
		if err != nil || u.Query().Get("ns") != host {
			t.Errorf("request %q does not carry ns=%s", l, host)
		}
	}
}

// checkOneChild fails t unless exactly one repository, one remote and one distribution are
// named name (the child objects of a pull-through image, created once whichever way the image
// was asked for).
func (e *env) checkOneChild(t testing.TB, name string) {
	t.Helper()
	for _, kind := range []string{"repositories", "remotes", "distributions"} {
		if n := len(e.api.List(t, "/pulp/api/v3/"+kind+"/container/container/", url.Values{"name": {name}})); n != 1 {
			t.Errorf("%d %s named %s, want 1", n, kind, name)
		}
	}
}

// checkOneFetch fails t unless the upstream served each blob of img exactly once.
func checkOneFetch(t testing.TB, hub *upstream.Upstream, img upstream.Image) {
	t.Helper()
	for _, b := range img.Blobs() {
		if n := hub.BlobGets(b.Digest); n != 1 {
			t.Errorf("upstream blob %s fetched %d times, want 1", b.Digest, n)
		}
	}
}

// TestMirrorContainerd: containerd's own client (ctr content fetch with a hosts.toml mirror,
// as containerd's CRI, BuildKit and Docker's containerd image store use it) pulls
// docker.io/library/busybox and quay.io/team/tool through the server; every registry request
// carries ns=<upstream host>, quay.io's goes to the distribution --mirror quay.io=... names,
// and the image is the same child a prefixed pull gets, each blob fetched upstream once.
func TestMirrorContainerd(t *testing.T) {
	harness.NeedContainerd(t)
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub, img := startBusyboxHub(t)
		quay := client.StartHub(t)
		// Another image than busybox (PushSmall's is the same bytes on every upstream).
		qimgs, err := quay.PushTags(ctx, "team/tool", 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		qimg := qimgs[0]
		e := startServer(t, eng, "", "--mirror", "docker-cache", "--mirror", "quay.io=quay-cache")
		e.createCache(t, "docker-cache", "docker-cache", hub.URL(), nil, nil)
		e.createCache(t, "quay-cache", "quay", quay.URL(), nil, nil)
		rec := startRecorder(t, e.srv.URL)
		ctd := harness.StartContainerd(t)

		hosts := t.TempDir()
		for _, h := range []string{"docker.io", "quay.io"} {
			if err := os.MkdirAll(filepath.Join(hosts, h), 0o755); err != nil {
				t.Fatal(err)
			}
			conf := fmt.Sprintf(containerdHostsToml, "http://"+deadAddr(t), rec.URL)
			if err := os.WriteFile(filepath.Join(hosts, h, "hosts.toml"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}

		hub.Reset()
		quay.Reset()
		ctd.Ctr(t, e.home, "content", "fetch", "--hosts-dir", hosts, "docker.io/library/busybox:latest").Must(t)
		checkNS(t, rec.registryRequests(), "docker.io")
		ctd.Ctr(t, e.home, "content", "fetch", "--hosts-dir", hosts, "quay.io/team/tool:"+qimg.Tag).Must(t)
		checkNS(t, rec.registryRequests(), "quay.io")

		// The content arrived: containerd's store holds the manifests and every blob.
		out := ctd.Ctr(t, e.home, "content", "ls", "-q").Must(t).Stdout
		for _, d := range append(append([]string{img.ManifestDigest, qimg.ManifestDigest}, blobDigests(img)...), blobDigests(qimg)...) {
			if !strings.Contains(out, d) {
				t.Errorf("containerd's content store lacks %s:\n%s", d, out)
			}
		}
		if imgs := ctd.Ctr(t, e.home, "images", "ls", "-q").Must(t).Stdout; !strings.Contains(imgs, "docker.io/library/busybox:latest") {
			t.Errorf("ctr images ls: %q", imgs)
		}

		// A prefixed mirror: the host's path names the pull-through distribution
		// (override_path), containerd still sends ns=docker.io; the same child again.
		prefixed := t.TempDir()
		if err := os.MkdirAll(filepath.Join(prefixed, "docker.io"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(containerdPrefixedHostsToml, "http://"+deadAddr(t), rec.URL+"/v2/"+cacheBase)
		if err := os.WriteFile(filepath.Join(prefixed, "docker.io", "hosts.toml"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		ctd.Ctr(t, e.home, "content", "fetch", "--hosts-dir", prefixed, "docker.io/library/busybox:latest").Must(t)
		reqs := rec.registryRequests()
		checkNS(t, reqs, "docker.io")
		for _, l := range reqs {
			if !strings.Contains(l, " /v2/"+cacheBase+"/library/busybox/") {
				t.Errorf("prefixed mirror request %q is not below /v2/%s/library/busybox/", l, cacheBase)
			}
		}

		// The prefixed name is the same child: no second fetch, one repository each.
		e.reg.mustPull(t, "docker-cache/library/busybox", "latest", img)
		e.reg.mustPull(t, "quay/team/tool", qimg.Tag, qimg)
		checkOneFetch(t, hub, img)
		checkOneFetch(t, quay, qimg)
		e.checkOneChild(t, "docker-cache/library/busybox")
		e.checkOneChild(t, "quay/team/tool")
	})
}

// TestMirrorPodman: podman with docker.io mirrored to the server, as an unprefixed mirror
// location (host:port, served by --mirror) and as a prefixed one (host:port/docker-cache),
// pulls docker.io/library/busybox through the cache; docker.io itself is a dead loopback
// address, so a fallback would fail the pull. Both ways are one child, fetched once.
func TestMirrorPodman(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		client.NeedTools(t, "podman")
		hub, img := startBusyboxHub(t)
		e := startServer(t, eng, "", "--mirror", "docker-cache")
		e.createCache(t, "docker-cache", cacheBase, hub.URL(), nil, nil)
		rec := startRecorder(t, e.srv.URL)
		recAddr := strings.TrimPrefix(rec.URL, "http://")

		hub.Reset()
		for _, mirror := range []string{recAddr, recAddr + "/" + cacheBase} {
			home := harness.NewClientHome(t, e.srv)
			home.PodmanEnv(t)
			conf := filepath.Join(home.Dir, ".containers", "registries.conf")
			if err := os.WriteFile(conf, []byte(podmanMirror(deadAddr(t), mirror, true)), 0o644); err != nil {
				t.Fatal(err)
			}
			home.Run(t, "podman", "pull", "docker.io/library/busybox:latest").Must(t)
			id := strings.TrimSpace(home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", "docker.io/library/busybox:latest").Must(t).Stdout)
			if id != img.ManifestDigest {
				t.Errorf("mirror %s: podman's image digest %q, want %s", mirror, id, img.ManifestDigest)
			}
			want := "/v2/library/busybox/manifests/"
			if mirror != recAddr {
				want = "/v2/" + cacheBase + "/library/busybox/manifests/"
			}
			reqs := rec.registryRequests()
			if !slices.ContainsFunc(reqs, func(l string) bool { return strings.Contains(l, want) }) {
				t.Errorf("mirror %s: podman asked no %s...: %v", mirror, want, reqs)
			}
		}
		checkOneFetch(t, hub, img)
		e.checkOneChild(t, cacheBase+"/library/busybox")
	})
}

// TestMirrorTagsCatalog: as a mirror, tags/list of an unprefixed name (without ns and with
// ns=docker.io) answers what it answers through the prefix, under the name asked for; the
// catalog lists the cached image by its prefixed name (docs/api.md, "Registry mirror").
func TestMirrorTagsCatalog(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		imgs, err := hub.PushTags(ctx, "library/busybox", 3, 1)
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng, "", "--mirror", "docker-cache")
		e.createCache(t, "docker-cache", cacheBase, hub.URL(), nil, nil)
		e.reg.mustPull(t, "library/busybox", imgs[0].Tag, imgs[0])

		tags := func(path string) map[string]any {
			t.Helper()
			resp, err := e.reg.Request(ctx, http.MethodGet, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			if err := decodeJSON(resp, &out); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			return out
		}
		prefixed := tags("/v2/" + cacheBase + "/library/busybox/tags/list")
		if got, _ := prefixed["tags"].([]any); !slices.Contains(got, any(imgs[0].Tag)) {
			t.Errorf("tags through the prefix: %v, want %s among them", prefixed["tags"], imgs[0].Tag)
		}
		for _, p := range []string{"/v2/library/busybox/tags/list", "/v2/library/busybox/tags/list?ns=docker.io"} {
			got := tags(p)
			if !equalJSON(got["tags"], prefixed["tags"]) {
				t.Errorf("GET %s: tags %v, through the prefix %v", p, got["tags"], prefixed["tags"])
			}
			if got["name"] != "library/busybox" {
				t.Errorf("GET %s: name %v, want the name asked for", p, got["name"])
			}
		}
		// Paging keeps the name asked for and the ns.
		resp, err := e.reg.Request(ctx, http.MethodGet, "/v2/library/busybox/tags/list?ns=docker.io&n=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if l := resp.Header.Get("Link"); !strings.HasPrefix(l, "</v2/library/busybox/tags/list?ns=docker.io&n=1&last=") {
			t.Errorf("Link of a mirror's tags page: %q", l)
		}

		resp, err = e.reg.Request(ctx, http.MethodGet, "/v2/_catalog", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cat struct {
			Repositories []string `json:"repositories"`
		}
		if err := decodeJSON(resp, &cat); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cat.Repositories, []string{cacheBase + "/library/busybox"}) {
			t.Errorf("catalog %v, want the cached image by its prefixed name", cat.Repositories)
		}
	})
}

// decodeJSON decodes a response body (at most 1 MiB) into v.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
