package lastpull

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps lastpull to gorm and models: the registry reaches it through its Pulls
// interface, and it knows nothing of HTTP, Redis or the task queue.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "gorm.io/gorm", "github.com/pulpgo/pulpgo/models")
}
