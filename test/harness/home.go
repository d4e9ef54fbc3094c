package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Default credentials of the server's API user, as the client files in a Home carry them.
const (
	Username = "admin"
	Password = "password"
)

// DefaultCommandTimeout bounds each command run by Home.Run and Home.Bash.
const DefaultCommandTimeout = 2 * time.Minute

// Home is a temporary HOME in which real clients (httpie, pulp-cli, podman, skopeo and
// scripts in the style of Pulp's documentation) talk to one server as the admin user.
type Home struct {
	// Dir is HOME. It holds .netrc, and is the working directory of commands.
	Dir string
	// ConfigDir is XDG_CONFIG_HOME: httpie/config.json and pulp/cli.toml.
	ConfigDir string
	// CacheDir is XDG_CACHE_HOME, where pulp-cli caches the server's API document.
	CacheDir string
	// DataDir is XDG_DATA_HOME.
	DataDir string
	// BaseURL is the server's base URL, http://127.0.0.1:PORT; BASE_ADDR in commands.
	BaseURL string
	// Addr is the server's host:port; REGISTRY_ADDR in commands.
	Addr string
	// ExtraEnv (KEY=VALUE) is added to every command's environment, after the rest.
	ExtraEnv []string
	// Timeout bounds each command; a command still running then is killed. Zero means
	// DefaultCommandTimeout.
	Timeout time.Duration

	root string // the repository root, for scripts/base.sh
}

// NewClientHome writes a temporary HOME for clients of srv:
//   - ~/.netrc with the admin user's credentials for 127.0.0.1 and localhost (httpie, curl);
//   - httpie's config.json with --ignore-stdin and --timeout=60 as default options;
//   - pulp-cli's cli.toml pointing at srv, with JSON output and no task timeout.
//
// Only srv.URL and srv.Addr are used.
func NewClientHome(t testing.TB, srv *Server) *Home {
	t.Helper()
	dir := t.TempDir()
	h := &Home{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, ".config"),
		CacheDir:  filepath.Join(dir, ".cache"),
		DataDir:   filepath.Join(dir, ".local", "share"),
		BaseURL:   strings.TrimRight(srv.URL, "/"),
		Addr:      srv.Addr,
		root:      RepoRoot(t),
	}
	if host, port, err := net.SplitHostPort(srv.Addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		h.Addr = net.JoinHostPort("127.0.0.1", port)
	}

	netrc := fmt.Sprintf("machine 127.0.0.1 login %[1]s password %[2]s\nmachine localhost login %[1]s password %[2]s\n",
		Username, Password)
	httpie := `{"default_options": ["--ignore-stdin", "--timeout=60"]}` + "\n"
	cli := fmt.Sprintf(`[cli]
base_url = %q
api_root = "/pulp/"
username = %q
password = %q
verify_ssl = false
format = "json"
domain = "default"
timeout = 0
headers = []
dry_run = false
verbose = 0
`, h.BaseURL, Username, Password)

	for _, f := range []struct {
		path, content string
		mode          os.FileMode
	}{
		{filepath.Join(dir, ".netrc"), netrc, 0o600},
		{filepath.Join(h.ConfigDir, "httpie", "config.json"), httpie, 0o644},
		{filepath.Join(h.ConfigDir, "pulp", "cli.toml"), cli, 0o600},
		{filepath.Join(dir, "auth.json"), `{"auths":{}}` + "\n", 0o600}, // REGISTRY_AUTH_FILE: must exist
	} {
		writeFile(t, f.path, f.content, f.mode)
	}
	for _, d := range []string{h.CacheDir, h.DataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("client home: %v", err)
		}
	}
	return h
}

// Env returns the environment of commands run in h: ours with HOME and XDG_* pointing into h,
// BASE_ADDR and CONTENT_ADDR set to the server's URL and REGISTRY_ADDR to its host:port,
// REGISTRY_AUTH_FILE to a credentials file in h (podman and skopeo running as root otherwise
// share /run/containers/0/auth.json: one test's login would be every test's on a reused port),
// without variables that would point clients elsewhere (PULP_*, NETRC, CONTAINERS_*,
// HTTPIE_CONFIG_DIR), then ExtraEnv.
func (h *Home) Env() []string {
	drop := []string{"HOME=", "XDG_CONFIG_HOME=", "XDG_CACHE_HOME=", "XDG_DATA_HOME=", "NETRC=",
		"HTTPIE_CONFIG_DIR=", "BASE_ADDR=", "CONTENT_ADDR=", "REGISTRY_ADDR=", "PULP_", "CONTAINERS_", "REGISTRY_AUTH_FILE="}
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+h.Dir,
		"XDG_CONFIG_HOME="+h.ConfigDir,
		"XDG_CACHE_HOME="+h.CacheDir,
		"XDG_DATA_HOME="+h.DataDir,
		"BASE_ADDR="+h.BaseURL,
		"CONTENT_ADDR="+h.BaseURL,
		"REGISTRY_ADDR="+h.Addr,
		"REGISTRY_AUTH_FILE="+filepath.Join(h.Dir, "auth.json"),
	)
	return append(env, h.ExtraEnv...)
}

// writeFile writes content to path, creating its directory, or fails t.
func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("client home: %v", err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("client home: %v", err)
	}
}
