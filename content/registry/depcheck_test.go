package registry

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the registry's dependencies to what the design allows: the standard
// library, gorm, and cacheonly, lru, local, oci, storage and models of this module. Ordinary
// distributions are served by content/local's images; the pull-through cache is reached
// through the PullThrough interface only (never content/pullthrough, nor the fill engine);
// server, gen and tasks are off limits.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "gorm.io/gorm", "github.com/pulpgo/pulpgo/content/cacheonly", "github.com/pulpgo/pulpgo/content/local", "github.com/pulpgo/pulpgo/content/lru", "github.com/pulpgo/pulpgo/content/oci", "github.com/pulpgo/pulpgo/content/storage", "github.com/pulpgo/pulpgo/content/token", "github.com/pulpgo/pulpgo/models")
}
