package token

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the token package a leaf: the standard library and the JWT library.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/golang-jwt/jwt/v5")
}
