package pullthrough

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/harness"
)

// The client configurations the mirror tests write. docs/mirror.md shows each of them with
// the documentation's addresses (TestMirrorDocs keeps them in step).

// podmanMirrorConf is registries.conf with docker.io mirrored to mirror (host:port, or
// host:port/base-path for a prefixed mirror; insecure = true for plain HTTP). The tests make
// docker.io's own location a dead loopback address: a fallback to it fails the pull visibly
// instead of leaving the machine.
const podmanMirrorConf = `[[registry]]
prefix = "docker.io"
location = %q

[[registry.mirror]]
location = %q
insecure = %t
`

// podmanMirror is the registries.conf of the tests: podmanMirrorConf with no unqualified
// search.
func podmanMirror(location, mirror string, insecure bool) string {
	return "unqualified-search-registries = []\n\n" + fmt.Sprintf(podmanMirrorConf, location, mirror, insecure)
}

// containerdHostsToml is <hosts dir>/<upstream host>/hosts.toml with the upstream (server)
// mirrored to a host (http://host:port in the tests). The tests' server is dead, as above.
const containerdHostsToml = `server = %q

[host.%q]
  capabilities = ["pull", "resolve"]
`

// containerdCAHostsToml is containerdHostsToml with the CA file that verifies the mirror's
// certificate.
const containerdCAHostsToml = containerdHostsToml + `  ca = %q
`

// containerdPrefixedHostsToml is containerdHostsToml for a mirror below a path
// (http://host:port/v2/<base path>): override_path makes containerd append the image's name
// to that path instead of to /v2/.
const containerdPrefixedHostsToml = `server = %q

[host.%q]
  capabilities = ["pull", "resolve"]
  override_path = true
`

// TestMirrorDocs: docs/mirror.md shows the configurations the mirror tests use, with its
// example addresses.
func TestMirrorDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "docs", "mirror.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const server, hub = "registry.example.com:24817", "https://registry-1.docker.io"
	for name, snippet := range map[string]string{
		"podman, unprefixed":   fmt.Sprintf(podmanMirrorConf, "docker.io", server, false),
		"podman, prefixed":     fmt.Sprintf(podmanMirrorConf, "docker.io", server+"/"+cacheBase, false),
		"containerd":           fmt.Sprintf(containerdHostsToml, hub, "https://"+server),
		"containerd with a CA": fmt.Sprintf(containerdCAHostsToml, hub, "https://"+server, "/etc/containerd/certs.d/docker.io/pulpgo-ca.crt"),
		"containerd, prefixed": fmt.Sprintf(containerdPrefixedHostsToml, hub, "https://"+server+"/v2/"+cacheBase),
	} {
		if !strings.Contains(doc, snippet) {
			t.Errorf("docs/mirror.md lacks the %s configuration the tests use:\n%s", name, snippet)
		}
	}
}
