package acme

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/toolcache"
)

// PebbleModule is the Pebble release the tests run.
const PebbleModule = "github.com/letsencrypt/pebble/v2@v2.10.3"

// pebbleBuild holds the one lookup (and, the first time on a machine, build) of Pebble per
// test process.
var pebbleBuild struct {
	once     sync.Once
	bin, dir string // the binary, and the module's source (its test certificates)
	err      error
}

// pebbleBinary returns Pebble's binary, built into /var/cache/pulpgo/pebble-<version>/ (or
// the user's cache when that is not writable) the first time, and the module directory.
func pebbleBinary() (bin, moduleDir string, err error) {
	pebbleBuild.once.Do(func() { pebbleBuild.bin, pebbleBuild.dir, pebbleBuild.err = buildPebble() })
	return pebbleBuild.bin, pebbleBuild.dir, pebbleBuild.err
}

func buildPebble() (string, string, error) {
	cache, err := toolcache.Dir()
	if err != nil {
		return "", "", err
	}
	version := PebbleModule[strings.LastIndexByte(PebbleModule, '@')+1:]
	bin := filepath.Join(cache, "pebble-"+version, "pebble")
	dir, err := toolcache.Build(PebbleModule, "./cmd/pebble", bin)
	return bin, dir, err
}

// PebbleOptions says where Pebble validates challenges and how long its certificates last.
type PebbleOptions struct {
	// HTTPPort and TLSPort are the ports Pebble connects to for HTTP-01 and TLS-ALPN-01.
	HTTPPort, TLSPort int
	// DNS is the host:port of the DNS server Pebble resolves names (and DNS-01 TXT records)
	// with.
	DNS string
	// Validity is how long issued certificates are valid; default 90 days.
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CARootFile is the PEM root of Pebble's own HTTPS (for --acme-ca-root).
	CARootFile string
	// Roots holds the root of the certificates Pebble issues, and nothing else.
	Roots *x509.CertPool
}

// StartPebble starts Pebble with opts, waits until it answers, and stops it when t ends.
func StartPebble(t *testing.T, opts PebbleOptions) *Pebble {
	t.Helper()
	bin, modDir, err := pebbleBinary()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Validity == 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	dir := t.TempDir()
	acmeAddr := fmt.Sprintf("127.0.0.1:%d", port(t))
	mgmtAddr := fmt.Sprintf("127.0.0.1:%d", port(t))
	certs := filepath.Join(modDir, "test", "certs")
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": acmeAddr, "managementListenAddress": mgmtAddr,
		"certificate": filepath.Join(certs, "localhost", "cert.pem"), "privateKey": filepath.Join(certs, "localhost", "key.pem"),
		"httpPort": opts.HTTPPort, "tlsPort": opts.TLSPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "pulpgo tests", "validityPeriod": int(opts.Validity / time.Second)}},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", confFile, "-dnsserver", opts.DNS, "-strict")
	// No sleeps before validations, no bad-nonce rejections, no reuse of authorizations:
	// every order is validated for real.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	startDaemon(t, cmd, filepath.Join(dir, "pebble.log"))

	p := &Pebble{Directory: "https://" + acmeAddr + "/dir", CARootFile: filepath.Join(certs, "pebble.minica.pem")}
	caPEM, err := os.ReadFile(p.CARootFile)
	if err != nil {
		t.Fatal(err)
	}
	own := x509.NewCertPool()
	own.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: own}}}
	var rootPEM []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		rootPEM, err = get(client, p.Directory, "https://"+mgmtAddr+"/roots/0")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // waiting for pebble to listen, not timing it
	}
	if err != nil {
		t.Fatalf("pebble did not answer: %v", err)
	}
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's /roots/0 is not PEM: %q", rootPEM)
	}
	return p
}

// get fetches each URL in turn and returns the last body; any answer but 200 is an error.
func get(c *http.Client, urls ...string) ([]byte, error) {
	var body []byte
	for _, u := range urls {
		resp, err := c.Get(u)
		if err != nil {
			return nil, err
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return body, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startDaemon starts cmd with its output in logPath, and kills it when t ends, showing the
// end of its log if t failed.
func startDaemon(t *testing.T, cmd *exec.Cmd, logPath string) string {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s:\n%s", filepath.Base(cmd.Path), tail(string(b), 40))
		}
	})
	return logPath
}
