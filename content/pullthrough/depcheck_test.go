package pullthrough

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the pull-through cache to what the design allows: the standard library,
// gorm and x/time/rate, and of this module the parts it builds on: the local image it wraps
// (content/local), the fill engine, the upstream client and its table by remote (remotes),
// flight, lru, oci, storage and models.
// It never imports the registry (which reaches it through registry.PullThrough), and neither
// server, gen nor tasks (which records pulls through the Recorder interface).
func TestImports(t *testing.T) {
	imports.Only(t, ".",
		"gorm.io/gorm",
		"golang.org/x/time/rate",
		"github.com/pulpgo/pulpgo/content/cacheonly",
		"github.com/pulpgo/pulpgo/content/fill",
		"github.com/pulpgo/pulpgo/content/flight",
		"github.com/pulpgo/pulpgo/content/local",
		"github.com/pulpgo/pulpgo/content/lru",
		"github.com/pulpgo/pulpgo/content/oci",
		"github.com/pulpgo/pulpgo/content/remotes",
		"github.com/pulpgo/pulpgo/content/storage",
		"github.com/pulpgo/pulpgo/content/upstream",
		"github.com/pulpgo/pulpgo/models")
}
