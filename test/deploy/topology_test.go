package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// localServices are the addresses that replace the compose file's own services when its
// pulpgo services run as local processes.
type localServices struct {
	database, redis, s3Endpoint, bucket, key, origin string
	// volumes maps a compose volume name to its local directory.
	volumes map[string]string
	tmp     func() string
}

// localEnv returns the environment of compose service svc as a local process: its own
// variables, with every address of another compose service, secret path and data dir
// replaced by the local one. A value still naming a compose service fails the test.
func (l localServices) localEnv(t *testing.T, p *types.Project, name string, svc types.ServiceConfig) []string {
	t.Helper()
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	dataDir := env["PULPGO_DATA_DIR"]
	local := l.tmp()
	for _, v := range svc.Volumes {
		rel, err := filepath.Rel(dataDir, v.Target)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("compose service %s: volume %s at %s, outside the data dir %s: the test cannot place it", name, v.Source, v.Target, dataDir)
		}
		dir := l.volume(v.Source)
		if rel == "." {
			local = dir
			continue
		}
		// A volume inside the data dir (the shared uploads): a link to the volume's directory.
		defer func() {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(local, rel)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(dir, filepath.Join(local, rel)); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}()
	}
	storage, err := url.Parse(env["PULPGO_STORAGE"])
	if err != nil || storage.Scheme != "s3" {
		t.Fatalf("compose service %s: PULPGO_STORAGE %q is not s3://bucket/prefix", name, env["PULPGO_STORAGE"])
	}
	storage.Host = l.bucket
	for k, v := range map[string]string{
		"PULPGO_DATABASE_URL": l.database, "PULPGO_REDIS_URL": l.redis, "PULPGO_S3_ENDPOINT": l.s3Endpoint,
		"PULPGO_S3_ACCESS_KEY": s3server.AccessKey, "PULPGO_S3_SECRET_KEY": s3server.SecretKey,
		"PULPGO_STORAGE": storage.String(), "PULPGO_DB_ENCRYPTION_KEY": l.key, "PULPGO_DATA_DIR": local,
		"PULPGO_CONTENT_ORIGIN": l.origin,
	} {
		if _, ok := env[k]; !ok {
			t.Fatalf("compose service %s sets no %s", name, k)
		}
		env[k] = v
	}
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + l.tmp()}
	for k, v := range env {
		for other := range p.Services {
			if strings.Contains(v, "//"+other+":") || strings.Contains(v, "@"+other+":") {
				t.Fatalf("compose service %s: %s=%s names the compose service %s, which the test did not replace", name, k, v, other)
			}
		}
		out = append(out, k+"="+v)
	}
	return out
}

func (l localServices) volume(name string) string {
	if d, ok := l.volumes[name]; ok {
		return d
	}
	d := l.tmp()
	l.volumes[name] = d
	return d
}

// localArgs returns the command of a compose service with each listening address (":N")
// moved to a free loopback port; addrs gets "service:N" -> the local address.
func localArgs(t *testing.T, name string, args []string, addrs map[string]string) []string {
	out := append([]string{}, args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] != "--listen" && out[i] != "--metrics-listen" {
			continue
		}
		_, port, err := net.SplitHostPort(out[i+1])
		if err != nil {
			t.Fatalf("compose service %s: %s %q: %v", name, out[i], out[i+1], err)
		}
		local := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		addrs[name+":"+port] = local
		out[i+1] = local
	}
	return out
}

// startProcess runs bin with args and env until the test ends (then an interrupt, and a
// kill 10 s later); its output goes to a log shown when the test fails.
func startProcess(t *testing.T, name, bin string, args, env []string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		stop()
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			lines := strings.Split(string(b), "\n")
			t.Logf("log of %s:\n%s", name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	})
}

// TestComposeTopology brings up the compose file's pulpgo services as local processes, each
// with its own command and environment from compose.yaml (PostgreSQL, Redis and SeaweedFS
// replaced by the test's, ports moved to free loopback ports, volumes to directories, the
// shared upload volume shared), migrate first, and nginx replaced by a Go proxy routing as
// nginx.conf does. Every process answers /readyz, /status/ shows both workers and both content
// apps, and concurrent pull-through pulls through the proxy, spread over both content
// processes, fetch each blob once from the upstream.
func TestComposeTopology(t *testing.T) {
	ctx := t.Context()
	p, err := loadCompose(ctx, t, map[string]string{"PULPGO_ADMIN_PASSWORD": testAdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	bin := harness.Binary(t)
	weed := s3server.Start(t, "")
	up, err := upstream.Start(ctx, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	img, err := up.PushLarge(ctx, "library/large", "latest", 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbURL := "http://" + lbLn.Addr().String()
	l := localServices{database: testenv.PostgresURL(t), redis: testenv.RedisURL(t), s3Endpoint: weed.Endpoint,
		bucket: weed.NewBucket(t), key: testenv.KeyFile(t), origin: lbURL, volumes: map[string]string{}, tmp: t.TempDir}

	services := pulpgoServices(p)
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	// migrate first: every other role waits for it to complete (TestCompose checks).
	migrate := services["migrate"]
	cmd := exec.CommandContext(ctx, bin, migrate.Command...)
	cmd.Env = l.localEnv(t, p, "migrate", migrate)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	addrs := map[string]string{}
	probes := map[string]string{} // service -> its /readyz URL
	for _, name := range names {
		svc := services[name]
		if name == "migrate" {
			continue
		}
		args := localArgs(t, name, svc.Command, addrs)
		startProcess(t, name, bin, args, l.localEnv(t, p, name, svc))
		proc := composeProcess(t, name, svc)
		if len(proc.probes) == 0 {
			t.Fatalf("compose service %s has no healthcheck", name)
		}
		probes[name] = "http://" + addrs[name+":"+proc.probes[0].port] + proc.probes[0].path
	}

	lbCfg := readLBConfig(t)
	for _, servers := range lbCfg.upstreams {
		for _, s := range servers {
			if addrs[s] == "" {
				t.Fatalf("nginx.conf proxies to %s, where no compose pulpgo service listens (they do on %v)", s, addrs)
			}
		}
	}
	balancer := newLB(lbCfg, addrs)
	lbSrv := &http.Server{Handler: balancer, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = lbSrv.Serve(lbLn) }()
	t.Cleanup(func() { _ = lbSrv.Close() })

	for name, u := range probes {
		var body map[string]string
		waitFor(t, name+" ready at "+u, func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body = nil
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode == http.StatusOK
		})
		if body["database"] != "ok" || body["redis"] != "ok" {
			t.Errorf("%s /readyz: %v, want database and redis ok", name, body)
		}
	}
	var status struct {
		OnlineWorkers     []any `json:"online_workers"`
		OnlineContentApps []any `json:"online_content_apps"`
		OnlineAPIApps     []any `json:"online_api_apps"`
	}
	waitFor(t, "2 workers, 2 content apps and the api in /status/ through the proxy", func() bool {
		status.OnlineWorkers, status.OnlineContentApps, status.OnlineAPIApps = nil, nil, nil
		if code := apiCall(t, "GET", lbURL+"/pulp/api/v3/status/", nil, &status); code != 200 {
			return false
		}
		return len(status.OnlineWorkers) == 2 && len(status.OnlineContentApps) == 2 && len(status.OnlineAPIApps) == 1
	})

	var remote map[string]any
	if code := apiCall(t, "POST", lbURL+"/pulp/api/v3/remotes/container/pull-through/", map[string]any{"name": "hub", "url": up.URL()}, &remote); code != 201 {
		t.Fatalf("create remote through the proxy: %d %v", code, remote)
	}
	var task map[string]string
	if code := apiCall(t, "POST", lbURL+"/pulp/api/v3/distributions/container/pull-through/",
		map[string]any{"name": "hub", "base_path": "hub", "remote": remote["pulp_href"]}, &task); code != 202 {
		t.Fatalf("create distribution through the proxy: %d %v", code, task)
	}
	waitFor(t, "task "+task["task"], func() bool {
		var got map[string]any
		apiCall(t, "GET", lbURL+task["task"], nil, &got)
		if got["state"] == "failed" {
			t.Fatalf("task failed: %v", got["error"])
		}
		return got["state"] == "completed"
	})

	up.Reset()
	before := balancer.Served()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			reg := &client.Registry{Base: lbURL, HTTP: http.DefaultClient, Accept: img.MediaType}
			if _, _, _, err := reg.Manifest(ctx, "hub/library/large", "latest"); err != nil {
				errs <- err
				return
			}
			for _, b := range img.Blobs() {
				if _, err := reg.Blob(ctx, "hub/library/large", b.Digest); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("pull through the proxy: %v", err)
	}
	for _, b := range img.Blobs() {
		if n := up.BlobGets(b.Digest); n != 1 {
			t.Errorf("blob %s: %d upstream GETs, want 1 across both content processes", b.Digest, n)
		}
	}
	after := balancer.Served()
	for _, s := range lbCfg.upstreams[lbCfg.route("/v2/")] {
		if after[s] == before[s] {
			t.Errorf("content server %s got no registry request of the pulls (served: before %v, after %v)", s, before, after)
		}
	}
}

// apiCall sends an API request as the admin of the compose file and decodes the answer.
func apiCall(t *testing.T, method, u string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, u, rd)
	req.SetBasicAuth("admin", testAdminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// waitFor polls ok until it returns true; 60 s without fail the test.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
