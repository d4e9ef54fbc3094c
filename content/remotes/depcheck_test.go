package remotes

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the client table below its users (the pull-through cache and the
// on_demand fetcher): the upstream client, lru, oci and models, nothing of HTTP serving, the
// database or the fill engine.
func TestImports(t *testing.T) {
	imports.Only(t, ".",
		"github.com/pulpgo/pulpgo/content/lru",
		"github.com/pulpgo/pulpgo/content/oci",
		"github.com/pulpgo/pulpgo/content/upstream",
		"github.com/pulpgo/pulpgo/models")
}
