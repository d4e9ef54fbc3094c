package upstreamstatus

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the publisher to what it reads (the upstream client's states) and where
// it writes (models, through gorm).
func TestImports(t *testing.T) {
	imports.Only(t, ".",
		"gorm.io/gorm",
		"github.com/pulpgo/pulpgo/content/upstream",
		"github.com/pulpgo/pulpgo/models")
}
