package pullthrough

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFillImports keeps the fill engine (fill*.go, staging*.go) on the standard library and
// content/storage, so it stays free of the registry, the API and the task queue.
func TestFillImports(t *testing.T) {
	var files []string
	for _, pattern := range []string{"fill*.go", "staging*.go"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
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
			if strings.Contains(first, ".") && p != "github.com/pulpgo/pulpgo/content/storage" {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
