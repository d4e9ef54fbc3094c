package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Module is the conformance suite's module at the version issue 9 names.
const Module = "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"

// build holds the one build of the suite per test process.
var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the suite's binary, building it into the machine's cache
// (/var/cache/pulpgo, or the user's cache when that is not writable) the first time.
func Binary() (string, error) {
	build.once.Do(func() { build.path, build.err = buildSuite() })
	return build.path, build.err
}

func buildSuite() (string, error) {
	dir := "/var/cache/pulpgo"
	if err := os.MkdirAll(dir, 0o755); err != nil || !writable(dir) {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory for the conformance suite: %w", err)
		}
		dir = filepath.Join(base, "pulpgo")
	}
	version := Module[strings.LastIndexByte(Module, '@')+1:]
	bin := filepath.Join(dir, "oci-conformance-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	out, err := exec.Command("go", "mod", "download", "-json", Module).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", Module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s printed no directory: %s", Module, out)
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-mod=mod", "-o", tmp, ".")
	cmd.Dir = mod.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", Module, err, out)
	}
	return bin, os.Rename(tmp, bin)
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

// Result is one test case of the suite's junit.xml.
type Result struct {
	Name   string `xml:"name,attr"`
	Status string `xml:"status,attr"` // passed, failure, skipped, disabled
	// Reason says why a test did not pass (a skipped test: why the suite counts the API as
	// unsupported).
	Reason string `xml:"system-out"`
}

// Results are the test cases of one run, by name.
type Results map[string]Result

// ReadResults reads the junit.xml a run wrote into dir.
func ReadResults(dir string) (Results, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Suites []struct {
			Cases []Result `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("junit.xml: %w", err)
	}
	out := Results{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			out[c.Name] = c
		}
	}
	return out, nil
}

// Count returns how many tests have each status.
func (rs Results) Count() map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[r.Status]++
	}
	return out
}

// With returns the sorted names of the tests with status.
func (rs Results) With(status string) []string {
	var out []string
	for name, r := range rs {
		if r.Status == status {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
