// Package toolcache builds the Go programs the tests run beside pulpgo (the OCI conformance
// suite, the Pebble ACME CA) once per machine, into /var/cache/pulpgo or, when that is not
// writable, the user's cache directory; later runs, and CI machines keeping that directory,
// skip the build.
package toolcache

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Dir returns the cache directory, creating it.
func Dir() (string, error) {
	dir := "/var/cache/pulpgo"
	if err := os.MkdirAll(dir, 0o755); err == nil && writable(dir) {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the test tools: %w", err)
	}
	dir = filepath.Join(base, "pulpgo")
	return dir, os.MkdirAll(dir, 0o755)
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// ModuleDir downloads module (path@version) into the module cache and returns its source
// directory.
func ModuleDir(module string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s printed no directory: %s", module, out)
	}
	return mod.Dir, nil
}

// Build builds the package pkg (relative to the module's root, like ./cmd/x) of module into
// bin unless bin exists, and returns the module's source directory. Each process builds into
// a file of its own and renames it into place, so a parallel process never runs a
// half-written binary.
func Build(module, pkg, bin string) (string, error) {
	dir, err := ModuleDir(module)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-mod=mod", "-o", tmp, pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build %s %s: %w\n%s", module, pkg, err, out)
	}
	return dir, os.Rename(tmp, bin)
}
