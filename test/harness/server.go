package harness

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

const (
	// StatusPath answers 200 once the server is ready.
	StatusPath = "/pulp/api/v3/status/"
	// readyTimeout bounds the wait for StatusPath after a start.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
	stopTimeout = 10 * time.Second
	// logTailLines is how much of the server's log a failing test shows.
	logTailLines = 80
)

// Options says how Start runs the server.
type Options struct {
	// Engine chooses the database and Redis: empty URLs mean the embedded ones.
	Engine testenv.Engine
	// Listen is the address to serve on; default 127.0.0.1:<free port>.
	Listen string
	// DataDir is the server's data directory; default a new t.TempDir().
	DataDir string
	// Args are more command-line arguments, after serve's own flags.
	Args []string
	// Env adds or overrides environment variables (KEY=VALUE) of the server.
	Env []string
	// Binary is the server binary to run; default Binary(t), the one built from ./cmd/pulpgo.
	Binary string
	// TLS, when set, says the server serves HTTPS: URL is https:// and the readiness check
	// connects with this client configuration.
	TLS *tls.Config
}

// Server is a running bin/pulpgo serve.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT (https:// with Options.TLS).
	URL string
	// Addr is the address it listens on, 127.0.0.1:PORT.
	Addr string
	// DataDir is its data directory.
	DataDir string
	// LogFile collects its standard output and error across restarts.
	LogFile string

	opts Options

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	exitErr error         // cmd.Wait's result, valid once done is closed
}

// Start runs the server with opts, waits up to 30 s until GET /pulp/api/v3/status/ answers 200,
// and returns it; it fails t (with the end of the server's log) otherwise. The server is
// stopped when t ends, and the end of its log is shown if t failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Binary(t)
	}
	if opts.Listen == "" {
		opts.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	host, port, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		t.Fatalf("Options.Listen %q: %v", opts.Listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	s := &Server{
		URL:     scheme + "://" + net.JoinHostPort(host, port),
		Addr:    opts.Listen,
		DataDir: opts.DataDir,
		LogFile: filepath.Join(t.TempDir(), "pulpgo.log"),
		opts:    opts,
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("end of the server's log %s:\n%s", s.LogFile, s.LogTail(logTailLines))
		}
	})
	s.start(t)
	return s
}

// Restart starts the server again with the same options and data directory, after stopping
// it if it still runs, and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// Stop sends SIGTERM and waits for the server to exit, sending SIGKILL after 10 s. It does
// nothing if the server is not running.
func (s *Server) Stop() { s.signal(syscall.SIGTERM, stopTimeout) }

// Kill ends the server with SIGKILL at once, as a crash would, and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 0) }

// ExitErr returns how the server's last run ended (nil for exit status 0), or nil while it
// runs or before it ever stopped.
func (s *Server) ExitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return nil
	}
	select {
	case <-s.done:
		return s.exitErr
	default:
		return nil
	}
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	const maxBytes = 64 << 10
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// args returns the command line of serve, after the binary.
func (s *Server) args() []string {
	args := []string{"serve", "--listen", s.opts.Listen, "--data-dir", s.opts.DataDir}
	if e := s.opts.Engine; e.DatabaseURL != "" {
		args = append(args, "--database-url", e.DatabaseURL)
	}
	if e := s.opts.Engine; e.RedisURL != "" {
		args = append(args, "--redis-url", e.RedisURL)
	}
	return append(args, s.opts.Args...)
}

// env returns the server's environment: ours without PULPGO_ settings (the flags say what
// the test wants), plus Options.Env.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PULPGO_") && !strings.HasPrefix(kv, "PULPGO_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, s.opts.Env...)
}

// start runs the binary and waits until it is ready.
func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		t.Fatalf("data directory: %v", err)
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("server log: %v", err)
	}
	defer logf.Close()

	cmd := exec.Command(s.opts.Binary, s.args()...)
	cmd.Env = s.env()
	cmd.Dir = s.DataDir
	cmd.Stdout = logf
	cmd.Stderr = logf
	detach(cmd)
	fmt.Fprintf(logf, "=== harness: %s %s\n", s.opts.Binary, strings.Join(s.args(), " "))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.opts.Binary, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.exitErr = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(done)
	}()

	if err := s.waitReady(done); err != nil {
		s.Stop()
		t.Fatalf("server at %s: %v (the end of its log follows)", s.URL, err)
	}
}

// waitReady polls StatusPath until it answers 200, the process exits, or readyTimeout passes.
func (s *Server) waitReady(done <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if s.opts.TLS != nil {
		client.Transport = &http.Transport{TLSClientConfig: s.opts.TLS}
	}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := client.Get(s.URL + StatusPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", StatusPath, resp.Status)
		}
		last = err
		select {
		case <-done:
			return fmt.Errorf("exited before it was ready: %v", s.ExitErr())
		case <-deadline.C:
			return fmt.Errorf("not ready after %s: %v", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// signal sends sig to the server's process group and waits for the server to exit; after
// grace (if not zero) it sends SIGKILL.
func (s *Server) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	kill := func(sig syscall.Signal) {
		// The negative pid is the process group (see detach).
		if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			_ = cmd.Process.Signal(sig)
		}
	}
	kill(sig)
	if sig != syscall.SIGKILL && grace > 0 {
		timer := time.NewTimer(grace)
		select {
		case <-done:
		case <-timer.C:
			kill(syscall.SIGKILL)
		}
		timer.Stop()
	}
	<-done
	s.noteExit(sig)
}

// noteExit writes into the log how the process ended.
func (s *Server) noteExit(sig syscall.Signal) {
	f, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== harness: sent %v; exit: %v\n", sig, s.ExitErr())
}
