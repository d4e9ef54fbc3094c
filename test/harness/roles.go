package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// Role is one process of a split-role deployment (bin/pulpgo api, content or worker), which a
// test may kill and start again with the same arguments and address.
type Role struct {
	// Name is the role: api, content or worker.
	Name string
	// Addr is the address it serves on (--listen), empty for a worker.
	Addr string
	// Log collects its output across restarts.
	Log string

	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRole starts bin's role with args (plus --listen on a free loopback port, except for a
// worker) and stops it (an interrupt, a kill 10 s later) when t ends, showing the end of its
// log if t failed. It does not wait until the process is ready (WaitAPI, WaitContent).
func StartRole(t testing.TB, bin, role string, args ...string) *Role {
	t.Helper()
	p := &Role{Name: role, bin: bin, Log: filepath.Join(t.TempDir(), role+".log")}
	if role != "worker" {
		p.Addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		args = append(args, "--listen", p.Addr)
	}
	p.args = append([]string{role}, args...)
	p.start(t)
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			t.Logf("log of %s %s:\n%s", role, p.Addr, Tail(string(b), 20))
		}
	})
	return p
}

// URL is http://Addr.
func (p *Role) URL() string { return "http://" + p.Addr }

// Stop interrupts the process, as an orderly shutdown does, and waits for it to exit
// (killing it after 10 s).
func (p *Role) Stop() { p.stop(os.Interrupt, 10*time.Second) }

// Kill ends the process with SIGKILL, as a crash would, and waits for it to exit.
func (p *Role) Kill() { p.stop(syscall.SIGKILL, 0) }

// Restart starts the process again with its arguments, after killing it if it still runs.
func (p *Role) Restart(t testing.TB) {
	t.Helper()
	p.Kill()
	p.start(t)
}

// Pid is the process id of the current run.
func (p *Role) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *Role) start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// stop sends sig and waits for the exit, killing the process after grace (when not zero).
func (p *Role) stop(sig os.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls ok every 20 ms until it returns true, failing t after 30 s; what names the
// awaited state.
func WaitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeClient sends the readiness probes of WaitAPI and WaitContent.
var probeClient = &http.Client{Timeout: 5 * time.Second}

// WaitAPI waits until the API at base answers /status/ 200.
func WaitAPI(t testing.TB, base string) {
	t.Helper()
	WaitFor(t, "the api at "+base+" up", func() bool { return probe(base+StatusPath) == http.StatusOK })
}

// WaitContent waits until the content app at addr answers /v2/ (401: it asks for a token).
func WaitContent(t testing.TB, addr string) {
	t.Helper()
	WaitFor(t, "content app "+addr+" up", func() bool { return probe("http://"+addr+"/v2/") == http.StatusUnauthorized })
}

// probe GETs url and returns the status, 0 when no answer came.
func probe(url string) int {
	resp, err := probeClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
