package client

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the package on the harness and the upstream, so that any end-to-end
// test package can use it.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/pulpgo/pulpgo/test/harness", "github.com/pulpgo/pulpgo/test/upstream")
}
