package upstream

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the package a leaf: its non-test files import only the standard library
// and content/flight (itself on the standard library only).
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/pulpgo/pulpgo/content/flight")
}
