package pullthrough

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// seedPort is the port of Pulp's documentation; only this test binds it.
const seedPort = "24817"

// TestSeedPodman runs Pulp's pull-through document as written: the two httpie commands (with
// url= pointing at the local Docker Hub), then `podman pull localhost:24817/docker-cache/
// library/busybox` with no login, and checks what the cache created through the API and what
// the recording task put in the repository. It also copies both platforms of an index image
// with skopeo.
func TestSeedPodman(t *testing.T) {
	client.NeedTools(t, "http", "jq", "podman", "skopeo")
	ln, err := net.Listen("tcp", "127.0.0.1:"+seedPort)
	if err != nil {
		t.Fatalf("port %s is taken (%v): this test serves on Pulp's documented port 127.0.0.1:%s; stop whatever holds it (make run?)", seedPort, err, seedPort)
	}
	ln.Close()

	ctx := client.Context(t)
	hub := client.StartHub(t)
	busybox, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	multi, err := hub.PushIndex(ctx, "library/multi", "latest")
	if err != nil {
		t.Fatal(err)
	}

	e := startServer(t, testenv.Embedded(), "127.0.0.1:"+seedPort)

	// The seed's commands, verbatim but for url=.
	script := fmt.Sprintf(`
# initialize a pull-through remote (the concept of upstream-name is not applicable here)
REMOTE_HREF=$(http ${BASE_ADDR}/pulp/api/v3/remotes/container/pull-through/ name=docker-cache url=%s | jq -r ".pulp_href")

# create a pull-through distribution linked to the initialized remote
http ${BASE_ADDR}/pulp/api/v3/distributions/container/pull-through/ remote=${REMOTE_HREF} name=docker-cache base_path=docker-cache
`, hub.URL())
	out := e.home.Bash(t, script).Must(t).Stdout
	var dist struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal([]byte(out), &dist); err != nil || dist.Task == "" {
		t.Fatalf("the distribution command printed %q, want {\"task\": ...}", out)
	}
	e.home.Bash(t, `wait_until_task_finished "$BASE_ADDR"`+shellQuote(dist.Task)).Must(t)

	// Pulling content, as the seed does it; podman knows the registry is plain HTTP.
	e.home.PodmanEnv(t, "localhost:"+seedPort)
	e.home.Run(t, "podman", "pull", "localhost:24817/docker-cache/library/busybox").Must(t)
	images := e.home.Run(t, "podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}").Must(t).Stdout
	if want := "localhost:24817/docker-cache/library/busybox:latest " + busybox.ManifestDigest; !slices.Contains(strings.Split(strings.TrimSpace(images), "\n"), want) {
		t.Errorf("podman images:\n%s\nwant a line %q", images, want)
	}

	// The child objects, all named <base_path>/<upstream name>.
	const path = "docker-cache/library/busybox"
	repo := e.api.byName(t, "/pulp/api/v3/repositories/container/container/", path)
	remote := e.api.byName(t, "/pulp/api/v3/remotes/container/container/", path)
	child := e.api.byName(t, "/pulp/api/v3/distributions/container/container/", path)
	if got := client.Str(remote, "upstream_name"); got != "library/busybox" {
		t.Errorf("child remote upstream_name %q, want library/busybox", got)
	}
	if got := strings.TrimRight(client.Str(remote, "url"), "/"); got != hub.URL() {
		t.Errorf("child remote url %q, want %q (copied from the pull-through remote)", got, hub.URL())
	}
	if got := repo["retain_repo_versions"]; got != 1.0 {
		t.Errorf("child repository retain_repo_versions %v, want 1", got)
	}
	if client.Str(child, "base_path") != path || client.Str(child, "repository") != client.Str(repo, "pulp_href") || client.Str(child, "remote") != client.Str(remote, "pulp_href") {
		t.Errorf("child distribution base_path %v repository %v remote %v; want %s, %s, %s",
			child["base_path"], child["repository"], child["remote"], path, repo["pulp_href"], remote["pulp_href"])
	}
	pt := e.api.byName(t, "/pulp/api/v3/distributions/container/pull-through/", cacheBase)
	if !equalJSON(pt["distributions"], []string{client.Str(child, "pulp_href")}) {
		t.Errorf("pull-through distribution's distributions = %v, want [%s]", pt["distributions"], child["pulp_href"])
	}

	// The recording task: the latest version holds the tag, the manifest and its blobs.
	repo = e.api.waitRecorded(t, path, 1)
	versionHref := client.Str(repo, "latest_version_href")
	version := e.api.Get(t, versionHref)
	if got, want := presentCounts(t, version), map[string]int{"container.tag": 1, "container.manifest": 1, "container.blob": len(busybox.Blobs())}; !equalJSON(got, want) {
		t.Errorf("version %s content_summary.present counts %v, want %v", versionHref, got, want)
	}
	tags, tagged := e.api.tagsOf(t, versionHref)
	if !slices.Equal(tags, []string{"latest"}) {
		t.Fatalf("tags in %s: %v, want [latest]", versionHref, tags)
	}
	manifest := e.api.Get(t, tagged["latest"])
	var layers int64
	for _, l := range busybox.Layers {
		layers += l.Size
	}
	if client.Str(manifest, "digest") != busybox.ManifestDigest || client.Str(manifest, "type") != "image" ||
		client.Str(manifest, "architecture") != "amd64" || client.Str(manifest, "os") != "linux" ||
		manifest["compressed_image_size"] != float64(layers) {
		t.Errorf("tagged manifest digest %v type %v architecture %v os %v compressed_image_size %v; want %s image amd64 linux %d",
			manifest["digest"], manifest["type"], manifest["architecture"], manifest["os"], manifest["compressed_image_size"],
			busybox.ManifestDigest, layers)
	}
	if got, want := e.api.digestsOf(t, "manifests", versionHref), []string{busybox.ManifestDigest}; !slices.Equal(got, want) {
		t.Errorf("manifests in %s: %v, want %v", versionHref, got, want)
	}
	if got, want := e.api.digestsOf(t, "blobs", versionHref), blobDigests(busybox); !slices.Equal(got, want) {
		t.Errorf("blobs in %s: %v, want %v", versionHref, got, want)
	}

	// Both platforms of an index, with skopeo.
	for _, arch := range []string{"amd64", "arm64"} {
		want, ok := multi.Child("linux/" + arch)
		if !ok {
			t.Fatalf("the index has no linux/%s child", arch)
		}
		mustSkopeoCopy(t, e, "docker-cache/library/multi:latest", want, "--override-os", "linux", "--override-arch", arch)
	}
	e.api.byName(t, "/pulp/api/v3/distributions/container/container/", "docker-cache/library/multi")
	pt = e.api.byName(t, "/pulp/api/v3/distributions/container/pull-through/", cacheBase)
	if d, _ := pt["distributions"].([]any); len(d) != 2 {
		t.Errorf("pull-through distribution's distributions = %v, want two children", pt["distributions"])
	}
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
