package fill

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the fill engine on the standard library and content/storage, so that
// the pull-through cache, and later push uploads and sync downloads, can use it while it stays
// free of the registry, the database, the API and the task queue.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/pulpgo/pulpgo/content/storage")
}
