package harness

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// PodmanEnv configures podman (and skopeo) for this home: a registries.conf that marks each of
// insecureRegistries (host:port; by default the server's address under 127.0.0.1 and localhost)
// as plain-HTTP, and a storage.conf with the vfs driver and temporary graphroot and runroot.
// It adds CONTAINERS_REGISTRIES_CONF and CONTAINERS_STORAGE_CONF to h.ExtraEnv, so that later
// Run and Bash calls use them, and returns the resulting Env.
func (h *Home) PodmanEnv(t testing.TB, insecureRegistries ...string) []string {
	t.Helper()
	if len(insecureRegistries) == 0 {
		insecureRegistries = []string{h.Addr}
		if _, port, err := net.SplitHostPort(h.Addr); err == nil {
			insecureRegistries = append(insecureRegistries, net.JoinHostPort("localhost", port))
		}
	}
	dir := filepath.Join(h.Dir, ".containers")
	storage := t.TempDir()

	var reg strings.Builder
	reg.WriteString("unqualified-search-registries = []\n")
	for _, r := range insecureRegistries {
		fmt.Fprintf(&reg, "\n[[registry]]\nlocation = %q\ninsecure = true\n", r)
	}
	regPath := filepath.Join(dir, "registries.conf")
	writeFile(t, regPath, reg.String(), 0o644)

	storagePath := filepath.Join(dir, "storage.conf")
	writeFile(t, storagePath, fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(storage, "graph"), filepath.Join(storage, "run")), 0o644)

	h.ExtraEnv = append(h.ExtraEnv,
		"CONTAINERS_REGISTRIES_CONF="+regPath,
		"CONTAINERS_STORAGE_CONF="+storagePath,
	)
	return h.Env()
}
