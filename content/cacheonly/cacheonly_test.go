package cacheonly

import (
	"context"
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

func TestWith(t *testing.T) {
	ctx := context.Background()
	if Is(ctx) {
		t.Error("a plain context is cache-only")
	}
	if !Is(With(ctx)) {
		t.Error("a marked context is not cache-only")
	}
}

// TestImports keeps the package a leaf: the standard library and oci.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/pulpgo/pulpgo/content/oci")
}
