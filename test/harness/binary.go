package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// build holds the one build of the server binary per test process.
var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds <repo>/bin/pulpgo from ./cmd/pulpgo once per test process and returns its
// path; it fails t when the build fails. Each process links to a file of its own and renames
// it into place, so parallel test processes never run a half-written binary.
func Binary(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	build.once.Do(func() {
		bin := filepath.Join(root, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			build.err = err
			return
		}
		tmp := filepath.Join(bin, fmt.Sprintf(".pulpgo-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/pulpgo")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp)
			build.err = fmt.Errorf("go build ./cmd/pulpgo: %w\n%s", err, out)
			return
		}
		final := filepath.Join(bin, "pulpgo")
		if err := os.Rename(tmp, final); err != nil {
			build.err = err
			return
		}
		build.path = final
	})
	if build.err != nil {
		t.Fatalf("build the server: %v", build.err)
	}
	return build.path
}

// RepoRoot returns the repository's root: the nearest directory above the working directory
// (a package directory under go test) that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("find the repository root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("find the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
