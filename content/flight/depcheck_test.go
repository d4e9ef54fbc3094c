package flight

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the package on the standard library: content/upstream, a leaf, uses it.
func TestImports(t *testing.T) {
	imports.Only(t, ".")
}
