package ondemand

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the on_demand fetcher to what it builds on: gorm and models (the remote
// artifacts and remotes), the fill engine, the table of upstream clients (remotes), oci, and
// content/local for the interface it implements. It never imports the registry or the
// pull-through cache.
func TestImports(t *testing.T) {
	imports.Only(t, ".",
		"gorm.io/gorm",
		"github.com/pulpgo/pulpgo/content/fill",
		"github.com/pulpgo/pulpgo/content/cacheonly",
		"github.com/pulpgo/pulpgo/content/local",
		"github.com/pulpgo/pulpgo/content/oci",
		"github.com/pulpgo/pulpgo/content/remotes",
		"github.com/pulpgo/pulpgo/models")
}
