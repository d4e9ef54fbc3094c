package local

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the local image below both of its users: the standard library, gorm, and
// lru, oci, storage and models of this module. The registry and the pull-through cache use
// this package, so it must use neither of them, nor the fill engine or the upstream client.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"gorm.io/gorm":                             true,
		"github.com/pulpgo/pulpgo/content/lru":     true,
		"github.com/pulpgo/pulpgo/content/oci":     true,
		"github.com/pulpgo/pulpgo/content/storage": true,
		"github.com/pulpgo/pulpgo/models":          true,
	}
	files, err := filepath.Glob("*.go")
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
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") && !allowed[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
