package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pulpgo/pulpgo/test/toolcache"
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
	dir, err := toolcache.Dir()
	if err != nil {
		return "", err
	}
	version := Module[strings.LastIndexByte(Module, '@')+1:]
	bin := filepath.Join(dir, "oci-conformance-"+version)
	_, err = toolcache.Build(Module, ".", bin)
	return bin, err
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
