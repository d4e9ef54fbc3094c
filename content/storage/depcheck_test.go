package storage

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImportsAreLeaf keeps storage a leaf: its non-test files import only the standard
// library and golang.org/x/sys/unix (sync_file_range), and storagetest only the standard
// library and storage.
func TestImportsAreLeaf(t *testing.T) {
	imports.Only(t, ".", "golang.org/x/sys/unix")
	imports.Only(t, "storagetest", "github.com/pulpgo/pulpgo/content/storage")
}
