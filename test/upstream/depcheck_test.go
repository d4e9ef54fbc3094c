package upstream_test

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestImports keeps the package a leaf of the standard library, and the
// command on the package alone, so tests of any layer can use them.
func TestImports(t *testing.T) {
	t.Parallel()
	for dir, allowed := range map[string][]string{
		".":           nil,
		"cmd/fakehub": {"github.com/pulpgo/pulpgo/test/upstream"},
	} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("read package %s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			first, _, _ := strings.Cut(imp, "/")
			if !strings.Contains(first, ".") || slices.Contains(allowed, imp) {
				continue // the standard library, or allowed
			}
			t.Errorf("%s imports %s; allowed beyond the standard library: %v", dir, imp, allowed)
		}
	}
}
