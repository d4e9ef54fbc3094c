package pullthrough

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the pull-through cache to what the design allows: the standard library,
// gorm and x/time/rate, and of this module the parts it builds on: the local image it wraps
// (content/local), the fill engine, the upstream client, flight, lru, oci, storage and models.
// It never imports the registry (which reaches it through registry.PullThrough), and neither
// server, gen nor tasks (which records pulls through the Recorder interface).
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"gorm.io/gorm":                              true,
		"golang.org/x/time/rate":                    true,
		"github.com/pulpgo/pulpgo/content/fill":     true,
		"github.com/pulpgo/pulpgo/content/flight":   true,
		"github.com/pulpgo/pulpgo/content/local":    true,
		"github.com/pulpgo/pulpgo/content/lru":      true,
		"github.com/pulpgo/pulpgo/content/oci":      true,
		"github.com/pulpgo/pulpgo/content/storage":  true,
		"github.com/pulpgo/pulpgo/content/upstream": true,
		"github.com/pulpgo/pulpgo/models":           true,
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
