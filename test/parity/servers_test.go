package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

const (
	// skipEnv set to 0 skips the test; anything else (or nothing) runs it.
	skipEnv = "PULPGO_PARITY"
	// pulpURLEnv names an already running Pulp to use instead of starting one. Its database
	// must be fresh: the conversations create objects with fixed names.
	pulpURLEnv = "PULPGO_PARITY_PULP_URL"
	// pulpStartTimeout bounds scripts/start-pulp.sh, a first install included.
	pulpStartTimeout = 10 * time.Minute
	// taskTimeout bounds the wait for one task to finish.
	taskTimeout = 60 * time.Second
	// requestTimeout bounds one request.
	requestTimeout = 30 * time.Second
)

// server is one side of the comparison.
type server struct {
	name string // "pulp" or "pulpgo"
	base string // http://127.0.0.1:PORT
	http *http.Client
}

func newServer(name, base string) *server {
	return &server{name: name, base: strings.TrimRight(base, "/"), http: &http.Client{
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// answer is one response.
type answer struct {
	status int
	body   []byte
	json   any // the decoded body, nil when empty or not JSON
	isJSON bool
}

// send makes one request. auth is admin, anonymous or wrong.
func (s *server) send(method, path, auth, contentType string, body []byte) (answer, error) {
	url := path
	if !strings.HasPrefix(path, "http") {
		url = s.base + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	switch auth {
	case "", "admin":
		req.SetBasicAuth(harness.Username, harness.Password)
	case "wrong":
		req.SetBasicAuth(harness.Username, "not-the-password")
	case "anonymous":
	default:
		return answer{}, fmt.Errorf("unknown auth %q", auth)
	}
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, body: b}
	if len(bytes.TrimSpace(b)) > 0 {
		if json.Unmarshal(b, &a.json) == nil {
			a.isJSON = true
		}
	}
	return a, nil
}

// waitTask polls a task until it is completed, failed or canceled.
func (s *server) waitTask(href string) (map[string]any, error) {
	deadline := time.Now().Add(taskTimeout)
	for {
		a, err := s.send(http.MethodGet, href, "admin", "", nil)
		if err != nil {
			return nil, err
		}
		task, _ := a.json.(map[string]any)
		if a.status != http.StatusOK || task == nil {
			return nil, fmt.Errorf("GET %s: %d %s", href, a.status, clip(a.body))
		}
		switch task["state"] {
		case "completed", "failed", "canceled":
			return task, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("task %s still %v after %s", href, task["state"], taskTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPulp returns the base URL of a real Pulp with a fresh database: the one named by
// PULPGO_PARITY_PULP_URL, or one started with scripts/start-pulp.sh and stopped when t ends.
func startPulp(t *testing.T) string {
	t.Helper()
	if u := os.Getenv(pulpURLEnv); u != "" {
		return u
	}
	root := harness.RepoRoot(t)
	// Not t.TempDir: PostgreSQL runs as the postgres user, which must reach the directory.
	dir, err := os.MkdirTemp("", "pulpgo-parity-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "start-pulp.sh")
	t.Cleanup(func() {
		out, err := exec.Command("bash", script, "stop", dir).CombinedOutput()
		if err != nil {
			t.Logf("stop Pulp: %v\n%s", err, out)
		}
		if t.Failed() {
			for _, name := range []string{"api", "worker"} {
				if b, err := os.ReadFile(filepath.Join(dir, name+".log")); err == nil {
					t.Logf("end of Pulp's %s.log:\n%s", name, tail(string(b), 30))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), pulpStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the real Pulp did not start (%v; set %s=0 to skip this test):\n%s",
			err, skipEnv, stderr.String())
	}
	url := strings.TrimSpace(string(out))
	t.Logf("Pulp at %s, started in %s", url, time.Since(start).Round(100*time.Millisecond))
	return url
}

// startPulpgo starts bin/pulpgo serve with the embedded engine, its own URL as the content
// origin (as the real Pulp's settings have one).
func startPulpgo(t *testing.T) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	srv := harness.Start(t, harness.Options{Engine: testenv.Embedded(), Listen: addr,
		Args: []string{"--content-origin", "http://" + addr}})
	return srv.URL
}

func clip(b []byte) string {
	const n = 600
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
