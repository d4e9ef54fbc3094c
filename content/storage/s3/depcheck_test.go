package s3

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the driver to the standard library, minio-go and the storage interfaces.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/minio/minio-go/v7", "github.com/minio/minio-go/v7/pkg/credentials",
		"github.com/pulpgo/pulpgo/content/storage")
}
