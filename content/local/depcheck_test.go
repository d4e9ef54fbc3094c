package local

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the local image below both of its users: the standard library, gorm, and
// lru, oci, storage and models of this module. The registry and the pull-through cache use
// this package, so it must use neither of them, nor the fill engine or the upstream client.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "gorm.io/gorm", "github.com/pulpgo/pulpgo/content/lru", "github.com/pulpgo/pulpgo/content/oci", "github.com/pulpgo/pulpgo/content/storage", "github.com/pulpgo/pulpgo/models")
}
