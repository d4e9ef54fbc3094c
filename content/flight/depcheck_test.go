package flight

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package on the standard library: content/upstream, a leaf, uses it.
func TestImports(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "flight.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			t.Errorf("flight.go imports %s; only the standard library is allowed", p)
		}
	}
}
