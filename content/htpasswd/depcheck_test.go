package htpasswd

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the package a leaf: the standard library and bcrypt.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "golang.org/x/crypto/bcrypt")
}
