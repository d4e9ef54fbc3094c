package harness_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// needTools fails t when a client the end-to-end tests use is missing (.ci/run installs them).
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: install the packages .ci/run installs", n)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fakeServer(addr string) *harness.Server {
	return &harness.Server{URL: "http://" + addr, Addr: addr}
}

func TestNewClientHome(t *testing.T) {
	h := harness.NewClientHome(t, fakeServer("127.0.0.1:12345"))

	if got, want := readFile(t, filepath.Join(h.Dir, ".netrc")),
		"machine 127.0.0.1 login admin password password\nmachine localhost login admin password password\n"; got != want {
		t.Errorf(".netrc = %q, want %q", got, want)
	}

	var httpie struct {
		DefaultOptions []string `json:"default_options"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(h.Dir, ".config", "httpie", "config.json"))), &httpie); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(httpie.DefaultOptions) != "[--ignore-stdin --timeout=60]" {
		t.Errorf("httpie default_options = %q", httpie.DefaultOptions)
	}

	cli := readFile(t, filepath.Join(h.Dir, ".config", "pulp", "cli.toml"))
	for _, line := range []string{"[cli]", `base_url = "http://127.0.0.1:12345"`, `api_root = "/pulp/"`,
		`username = "admin"`, `password = "password"`, "verify_ssl = false", `format = "json"`,
		`domain = "default"`, "timeout = 0", "dry_run = false", "verbose = 0"} {
		if !strings.Contains(cli, line+"\n") {
			t.Errorf("cli.toml lacks %q:\n%s", line, cli)
		}
	}

	env := strings.Join(h.Env(), "\n") + "\n"
	for _, kv := range []string{"HOME=" + h.Dir, "XDG_CONFIG_HOME=" + filepath.Join(h.Dir, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(h.Dir, ".cache"), "BASE_ADDR=http://127.0.0.1:12345",
		"REGISTRY_ADDR=127.0.0.1:12345"} {
		if !strings.Contains(env, "\n"+kv+"\n") && !strings.HasPrefix(env, kv+"\n") {
			t.Errorf("Env lacks %s", kv)
		}
	}

	// pulp-cli itself reads the file and finds every key valid.
	needTools(t, "pulp")
	r := h.Run(t, "pulp", "config", "validate", "--strict").Must(t)
	t.Log(r.Stdout, r.Stderr)
	// The variables reach commands.
	if out := h.Bash(t, `echo "$HOME $BASE_ADDR"`).Must(t).Stdout; out != h.Dir+" http://127.0.0.1:12345\n" {
		t.Errorf("bash saw %q", out)
	}
}

func TestPodmanEnv(t *testing.T) {
	h := harness.NewClientHome(t, fakeServer("127.0.0.1:12345"))
	env := strings.Join(h.PodmanEnv(t), "\n")
	reg := readFile(t, filepath.Join(h.Dir, ".containers", "registries.conf"))
	for _, s := range []string{"location = \"127.0.0.1:12345\"\ninsecure = true", "location = \"localhost:12345\"\ninsecure = true"} {
		if !strings.Contains(reg, s) {
			t.Errorf("registries.conf lacks %q:\n%s", s, reg)
		}
	}
	storage := readFile(t, filepath.Join(h.Dir, ".containers", "storage.conf"))
	if !strings.Contains(storage, "driver = \"vfs\"") || !strings.Contains(storage, "graphroot = ") || !strings.Contains(storage, "runroot = ") {
		t.Errorf("storage.conf:\n%s", storage)
	}
	for _, k := range []string{"CONTAINERS_REGISTRIES_CONF=", "CONTAINERS_STORAGE_CONF="} {
		if !strings.Contains(env, k) {
			t.Errorf("env lacks %s", k)
		}
	}
	// podman reads both files.
	needTools(t, "podman")
	info := h.Run(t, "podman", "info", "--format", "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}").Must(t).Stdout
	if !strings.HasPrefix(info, "vfs ") || !strings.Contains(storage, strings.TrimSpace(strings.TrimPrefix(info, "vfs "))) {
		t.Errorf("podman info = %q; storage.conf:\n%s", info, storage)
	}
}

// TestPodmanPushPull checks that PodmanEnv's registries.conf lets podman push to and pull from
// a plain-HTTP registry (Debian's docker-registry) without --tls-verify flags.
func TestPodmanPushPull(t *testing.T) {
	needTools(t, "podman", "docker-registry", "busybox")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "store"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = reg.Process.Kill()
		_ = reg.Wait()
	})
	waitHTTP(t, "http://"+addr+"/v2/")

	h := harness.NewClientHome(t, fakeServer(addr))
	h.PodmanEnv(t)
	_, port, _ := net.SplitHostPort(addr)
	out := h.Bash(t, fmt.Sprintf(`
mkdir -p rootfs/bin && cp "$(command -v busybox)" rootfs/bin/ && tar -C rootfs -cf layer.tar .
podman import -q layer.tar localhost/harness:1 >/dev/null
podman push -q localhost/harness:1 "$REGISTRY_ADDR/harness:1"
podman rmi localhost/harness:1 >/dev/null
podman pull -q "$REGISTRY_ADDR/harness:1" >/dev/null
podman pull -q localhost:%s/harness:1 >/dev/null
podman images --format '{{.Repository}}:{{.Tag}}' | sort
`, port)).Must(t).Stdout
	if want := fmt.Sprintf("%s/harness:1\nlocalhost:%s/harness:1\n", addr, port); out != want {
		t.Errorf("podman images:\n%s\nwant:\n%s", out, want)
	}
}

// waitHTTP polls url until it answers at all, for up to 30 s.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", url, err)
		}
		<-tick.C
	}
}

func TestBaseScriptParses(t *testing.T) {
	root := harness.RepoRoot(t)
	for _, s := range []string{"base.sh", "test.sh", "start-postgres.sh", "start-redis.sh"} {
		if out, err := exec.Command("bash", "-n", filepath.Join(root, "scripts", s)).CombinedOutput(); err != nil {
			t.Errorf("bash -n scripts/%s: %v\n%s", s, err, out)
		}
	}
	if out, err := exec.Command("bash", "-n", filepath.Join(root, ".ci", "run")).CombinedOutput(); err != nil {
		t.Errorf("bash -n .ci/run: %v\n%s", err, out)
	}
}

// taskServer serves Pulp-like tasks under /tasks/NAME/: NAME "slow" is running for its first
// two GETs, then completed; the others stay in the state NAME. It wants the credentials from
// the home's .netrc.
func taskServer(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	gets := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "password" {
			w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
			http.Error(w, `{"detail":"Authentication credentials were not provided."}`, http.StatusUnauthorized)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/tasks/")
		name = strings.TrimSuffix(name, "/")
		if !ok || name == "missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"detail":"Not found."}`)
			return
		}
		mu.Lock()
		gets[name]++
		n := gets[name]
		mu.Unlock()
		state := name
		if name == "slow" {
			state = "running"
			if n > 2 {
				state = "completed"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"pulp_href":%q,"state":%q}`, r.URL.Path, state)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWaitUntilTaskFinished(t *testing.T) {
	needTools(t, "http", "jq")
	ts := taskServer(t)
	h := harness.NewClientHome(t, fakeServer(strings.TrimPrefix(ts.URL, "http://")))
	for _, tc := range []struct {
		task     string
		timeout  int
		code     int
		contains string
	}{
		{"slow", 30, 0, `"state": "completed"`},
		{"completed", 30, 0, "complete."},
		{"failed", 30, 1, "Task in final state: failed"},
		{"canceled", 30, 1, "Task in final state: canceled"},
		{"missing", 30, 1, "Not a task"},
		{"waiting", 1, 1, "Task still waiting after 1s"},
	} {
		t.Run(tc.task, func(t *testing.T) {
			r := h.Bash(t, fmt.Sprintf(`WAIT_TASK_TIMEOUT=%d wait_until_task_finished "$BASE_ADDR/tasks/%s/"; echo after`, tc.timeout, tc.task))
			if r.Code != tc.code || !strings.Contains(r.Stdout, tc.contains) {
				t.Errorf("exit %d, want %d, stdout containing %q:\n%s\nstderr:\n%s", r.Code, tc.code, tc.contains, r.Stdout, r.Stderr)
			}
			if after := strings.Contains(r.Stdout, "after\n"); after != (tc.code == 0) {
				t.Errorf("script went on after the wait: %v, want %v", after, tc.code == 0)
			}
		})
	}
}

func TestRun(t *testing.T) {
	h := harness.NewClientHome(t, fakeServer("127.0.0.1:12345"))
	if r := h.Run(t, "sh", "-c", "echo out; echo err >&2; exit 3"); r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("got %+v", r)
	}
	if r := h.Run(t, "no-such-command-pulpgo"); r.Code != -1 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("missing command: got %+v", r)
	}
	if r := h.Run(t, "cat"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("cat with no standard input: got %+v", r)
	}
	h.Timeout = 300 * time.Millisecond
	start := time.Now()
	r := h.Bash(t, "sleep 30 & sleep 30")
	if r.Code != -1 || !strings.Contains(r.Stderr, "timeout") {
		t.Errorf("hung command: got %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("hung command took %s to be killed", d)
	}
}

// fakePulpgo is a stand-in for bin/pulpgo: it records its arguments and serves its data
// directory's www folder (which holds pulp/api/v3/status/) with python3's http.server.
const fakePulpgo = `#!/usr/bin/env bash
set -euo pipefail
[[ $1 == serve ]]; shift
echo "$*" >>starts
while [[ $# -gt 0 ]]; do
	case $1 in
	--listen) listen=$2; shift ;;
	--data-dir) dir=$2; shift ;;
	esac
	shift
done
mkdir -p "$dir/www/pulp/api/v3/status"
echo '{}' >"$dir/www/pulp/api/v3/status/index.html"
echo "fake pulpgo on $listen"
exec python3 -m http.server --bind "${listen%:*}" --directory "$dir/www" "${listen##*:}"
`

func TestStartStopRestart(t *testing.T) {
	needTools(t, "python3")
	bin := filepath.Join(t.TempDir(), "pulpgo")
	if err := os.WriteFile(bin, []byte(fakePulpgo), 0o755); err != nil {
		t.Fatal(err)
	}
	engine := testenv.Engine{Name: "fake", DatabaseURL: "postgres://db", RedisURL: "redis://r/1"}
	srv := harness.Start(t, harness.Options{Binary: bin, Engine: engine, Args: []string{"--extra"}})

	status := func() error {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(srv.URL + harness.StatusPath)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	if err := status(); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.URL != "http://"+srv.Addr {
		t.Errorf("URL %q, Addr %q", srv.URL, srv.Addr)
	}
	starts := func() []string {
		return strings.Split(strings.TrimSpace(readFile(t, filepath.Join(srv.DataDir, "starts"))), "\n")
	}
	want := fmt.Sprintf("--listen %s --data-dir %s --database-url postgres://db --redis-url redis://r/1 --extra", srv.Addr, srv.DataDir)
	if got := starts(); len(got) != 1 || got[0] != want {
		t.Errorf("arguments %q, want [%q]", got, want)
	}

	srv.Kill()
	if err := status(); err == nil {
		t.Fatal("still answering after Kill")
	}
	if srv.ExitErr() == nil {
		t.Error("ExitErr is nil after SIGKILL")
	}
	srv.Restart(t)
	if err := status(); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if got := starts(); len(got) != 2 {
		t.Errorf("started %d times, want 2", len(got))
	}
	srv.Stop()
	if _, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		t.Error("still listening after Stop")
	}
	srv.Stop() // a second Stop does nothing
	if !strings.Contains(srv.LogTail(100), "fake pulpgo on "+srv.Addr) {
		t.Errorf("log lacks the server's output:\n%s", srv.LogTail(100))
	}
}
