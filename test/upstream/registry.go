package upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// registryStartTimeout bounds how long a registry may take to answer /v2/.
const registryStartTimeout = 20 * time.Second

// errExitedEarly means the registry died before it answered, most likely
// because another process took its port first.
var errExitedEarly = errors.New("registry exited before it answered /v2/")

// registryProcess is a running docker-registry.
type registryProcess struct {
	addr    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
}

// startRegistry runs docker-registry with filesystem storage under dir on a
// free 127.0.0.1 port and waits until it answers /v2/.
func startRegistry(ctx context.Context, binary, dir string, client *http.Client) (*registryProcess, error) {
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install -y docker-registry): %v", ErrMissingTool, binary, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	// The free port is released before the registry binds it, so another
	// process may take it in between: try again on a new port.
	for attempt := 1; ; attempt++ {
		p, err := launchRegistry(path, dir)
		if err != nil {
			return nil, err
		}
		err = p.waitReady(ctx, client)
		if err == nil {
			return p, nil
		}
		_ = p.stop()
		if !errors.Is(err, errExitedEarly) || attempt == 3 {
			return nil, fmt.Errorf("%w\n%s", err, p.logTail())
		}
	}
}

// launchRegistry writes a config for a fresh free port and starts the process.
func launchRegistry(path, dir string) (*registryProcess, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
`, strconv.Quote(filepath.Join(dir, "storage")), strconv.Quote(addr), strconv.Quote(rand.Text()))
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	p := &registryProcess{addr: addr, logPath: filepath.Join(dir, "registry.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	p.cmd = exec.Command(path, "serve", config)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = registryEnv()
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// registryEnv is our environment without REGISTRY_* variables, which would
// override the config file.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /v2/ until it answers 200, the process exits, or the
// deadline passes.
func (p *registryProcess) waitReady(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w (addr %s)", errExitedEarly, p.addr)
		case <-ctx.Done():
			return fmt.Errorf("registry at %s did not answer /v2/: %w", p.addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop terminates the registry, killing it if it lingers.
func (p *registryProcess) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill registry: %w", err)
	}
	<-p.exited
	return nil
}

// logTail returns the end of the registry's log, for error messages.
func (p *registryProcess) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return "registry log: " + string(b)
}
