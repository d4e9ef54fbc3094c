package storage_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsAreLeaf keeps storage a leaf: its non-test files import only the standard
// library, and storagetest only the standard library and storage.
func TestImportsAreLeaf(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":           nil,
		"storagetest": {"github.com/pulpgo/pulpgo/content/storage"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(p, "/")
				if !strings.Contains(first, ".") {
					continue // standard library
				}
				ok := false
				for _, a := range allowed {
					ok = ok || p == a
				}
				if !ok {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}
