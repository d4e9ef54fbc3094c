// Package s3server starts a real S3-compatible object store for the tests: SeaweedFS (weed
// server with its S3 gateway), on loopback ports, with one identity whose keys the tests sign
// with, so presigned URLs and anonymous refusals are checked for real.
package s3server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/toolcache"
)

// Module is the SeaweedFS release the tests run. `go install` refuses it (its go.mod has
// replace directives), so it is built from its module directory.
const Module = "github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6"

// The identity the server accepts.
const (
	AccessKey = "pulpgo-test"
	SecretKey = "pulpgo-test-secret"
)

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary returns the weed binary, built into /var/cache/pulpgo/seaweedfs-<version>/ (or the
// user's cache) the first time on a machine: about five minutes.
func Binary() (string, error) {
	build.once.Do(func() {
		cache, err := toolcache.Dir()
		if err != nil {
			build.err = err
			return
		}
		version := Module[strings.LastIndexByte(Module, '@')+1:]
		build.bin = filepath.Join(cache, "seaweedfs-"+version, "weed")
		_, build.err = toolcache.Build(Module, "./weed", build.bin)
	})
	return build.bin, build.err
}

// Server is a running SeaweedFS with its S3 gateway.
type Server struct {
	// Endpoint is the S3 gateway's URL, http://127.0.0.1:<port>.
	Endpoint string
	// Client is a minio-go client signed with the test identity, for checks.
	Client *minio.Client

	bin, logPath string
	args         []string
	mu           sync.Mutex
	cmd          *exec.Cmd // nil while stopped
}

// Start starts SeaweedFS in a temporary directory (dir, when not empty: a directory the test
// chose, for example a small tmpfs), waits until its S3 gateway answers, and stops it when t
// ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	return StartArgs(t, dir)
}

// StartVolumes is Start with volumes of volumeMB MiB at most: weed makes as many volumes as
// its directory's free space holds of that size, so a small tmpfs needs small ones.
func StartVolumes(t testing.TB, dir string, volumeMB int) *Server {
	t.Helper()
	return StartArgs(t, dir, fmt.Sprintf("-master.volumeSizeLimitMB=%d", volumeMB))
}

// StartArgs is Start with more arguments for weed server, after the defaults (which they
// override): on a small tmpfs, for example, -master.volumeSizeLimitMB=8 so that volumes fit.
func StartArgs(t testing.TB, dir string, args ...string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	conf := map[string]any{"identities": []map[string]any{{
		"name":        "pulpgo",
		"credentials": []map[string]string{{"accessKey": AccessKey, "secretKey": SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(t.TempDir(), "s3.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{bin: bin, logPath: filepath.Join(t.TempDir(), "weed.log")}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			t.Logf("tail of weed's log:\n%s", tail(string(b), 30))
		}
	})
	// Free ports are picked before weed binds them: another test may take one meanwhile
	// (packages run in parallel). weed then stops with "address already in use", and the
	// start is tried again on new ports.
	for attempt := 1; ; attempt++ {
		port := func() string { return fmt.Sprint(testenv.FreePort(t)) }
		s3Port := port()
		s.Endpoint = "http://127.0.0.1:" + s3Port
		s.args = append([]string{"server", "-dir=" + dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-master.port=" + port(), "-master.port.grpc=" + port(), "-master.telemetry=false",
			"-master.volumeSizeLimitMB=256", "-volume.max=0",
			"-volume.port=" + port(), "-volume.port.grpc=" + port(),
			"-filer.port=" + port(), "-filer.port.grpc=" + port(),
			"-s3", "-s3.port=" + s3Port, "-s3.port.grpc=" + port(), "-s3.config=" + confFile,
			"-s3.port.iceberg=0", "-s3.port.lance=0"}, args...)
		s.Client, err = minio.New("127.0.0.1:"+s3Port, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		err = s.tryStart()
		if err == nil {
			break
		}
		s.Stop()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("start weed: %v\n%s", err, tail(string(b), 30))
		}
	}
	return s
}

// Stop kills weed (SIGKILL, its whole process group), as a crash or a pulled plug would stop
// the store; Restart starts it again on the same directory and ports.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts weed again after Stop, and waits until an object can be written.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// errPortTaken is a start that failed because a port was taken before weed bound it.
var errPortTaken = errors.New("a port weed was given is in use")

// start runs weed with s.args and waits until it works, or fails t.
func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := s.tryStart(); err != nil {
		b, _ := os.ReadFile(s.logPath)
		t.Fatalf("start weed: %v\n%s", err, tail(string(b), 30))
	}
}

// tryStart runs weed with s.args, its output appended to s.logPath, and waits until it works
// (errPortTaken when it stopped for a port in use).
func (s *Server) tryStart() error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	offset, _ := logFile.Seek(0, io.SeekEnd)
	cmd := exec.Command(s.bin, s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	// Waiting for weed to start (master, volume, filer, then the gateway, and the filer's lock
	// ring, without which writes wait), not timing it: ready is when an object can be written.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.Client.MakeBucket(ctx, "ready", minio.MakeBucketOptions{})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil
		}
		if err == nil {
			_, err = s.Client.PutObject(ctx, "ready", "probe", strings.NewReader("ready"), 5, minio.PutObjectOptions{})
		}
		cancel()
		if err == nil {
			return nil
		}
		if b, rerr := os.ReadFile(s.logPath); rerr == nil && int64(len(b)) > offset &&
			strings.Contains(string(b[offset:]), "address already in use") {
			return errPortTaken
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weed's S3 gateway did not answer within 60 s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// NewBucket creates a bucket of a fresh name and returns the name. Creating the first bucket
// may take weed a few seconds (it grows its first volumes).
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "b-" + strings.ToLower(rand.Text()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Get does a plain GET of url (with a Range header unless rng is empty) and returns the body
// and status.
func Get(t testing.TB, url, rng string) ([]byte, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp.StatusCode
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
