package inuse

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps inuse a leaf that knows Redis and nothing of the rest of pulpgo.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/redis/go-redis/v9")
}
