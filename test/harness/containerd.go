package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// containerdConfig is the daemon's configuration: its own root, state and socket, and only
// the content store, metadata and image services a `ctr content fetch` needs; CRI, the task
// runtimes and the snapshotters that want a system setup are disabled, so that it starts in
// a moment on any machine.
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.grpc.v1.tasks",
  "io.containerd.service.v1.tasks-service",
  "io.containerd.internal.v1.restart",
  "io.containerd.internal.v1.opt",
  "io.containerd.monitor.v1.cgroups",
  "io.containerd.runtime.v1.linux",
  "io.containerd.runtime.v2.task",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = %q

[ttrpc]
  address = %q
`

// Containerd is a containerd daemon of a test's own (Debian's package), for its client ctr.
type Containerd struct {
	// Socket is the daemon's gRPC socket, ctr's --address.
	Socket string
	// Log collects the daemon's output.
	Log string
}

// NeedContainerd skips t when containerd cannot run here (not root, or containerd and ctr
// not installed), except in CI (CI=true), where that fails t: CI installs it (.ci/run).
func NeedContainerd(t testing.TB) {
	t.Helper()
	var missing string
	if os.Geteuid() != 0 {
		missing = "containerd needs root"
	}
	for _, n := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(n); err != nil {
			missing = n + " is not installed (apt-get install containerd)"
		}
	}
	switch {
	case missing == "":
	case os.Getenv("CI") == "true":
		t.Fatalf("%s: CI must run the containerd tests", missing)
	default:
		t.Skipf("%s; skipping (CI fails instead)", missing)
	}
}

// StartContainerd starts containerd with its own root, state directory and socket under a
// temporary directory, waits until ctr reaches it, and stops it when t ends. It calls
// NeedContainerd first.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	NeedContainerd(t)
	// A short directory: a unix socket's path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Containerd{Socket: filepath.Join(dir, "c.sock"), Log: filepath.Join(dir, "containerd.log")}
	conf := filepath.Join(dir, "config.toml")
	writeFile(t, conf, fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		c.Socket, c.Socket+".ttrpc"), 0o600)
	logf, err := os.Create(c.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(c.Log)
			t.Logf("containerd's log:\n%s", b)
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "ctr", "--address", c.Socket, "version").Run()
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-done:
			b, _ := os.ReadFile(c.Log)
			t.Fatalf("containerd exited before it was ready:\n%s", b)
		case <-time.After(50 * time.Millisecond): // waiting for the socket, not timing it
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not ready after %s: %v", readyTimeout, err)
		}
	}
}

// Ctr runs ctr against c with args (after --address), in h.
func (c *Containerd) Ctr(t testing.TB, h *Home, args ...string) Result {
	t.Helper()
	return h.Run(t, "ctr", append([]string{"--address", c.Socket}, args...)...)
}
