package registry

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the registry's dependencies to what the design allows: the standard
// library, gorm, and lru, local, oci, storage and models of this module. Ordinary
// distributions are served by content/local's images; the pull-through cache is reached
// through the PullThrough interface only (never content/pullthrough, nor the fill engine);
// server, gen and tasks are off limits.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"gorm.io/gorm":                             true,
		"github.com/pulpgo/pulpgo/content/local":   true,
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
