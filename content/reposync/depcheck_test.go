package reposync

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps repository sync to what it builds on: the upstream client (and remotes,
// which turns a remote into its client settings), the fill engine, the local store, oci, storage and models. It never imports the registry,
// server, gen or tasks (which reaches it through tasks.Syncer).
func TestImports(t *testing.T) {
	imports.Only(t, ".",
		"github.com/pulpgo/pulpgo/content/fill",
		"github.com/pulpgo/pulpgo/content/local",
		"github.com/pulpgo/pulpgo/content/oci",
		"github.com/pulpgo/pulpgo/content/remotes",
		"github.com/pulpgo/pulpgo/content/storage",
		"github.com/pulpgo/pulpgo/content/upstream",
		"github.com/pulpgo/pulpgo/models")
}
