package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

var keyOnce sync.Once

// UseEncryptionKey sets a random database encryption key for this test process, once: every
// test of a package that opens a database calls it (Main does), since models seals remote
// secrets and task arguments with the one key of the process.
func UseEncryptionKey() {
	keyOnce.Do(func() {
		raw := make([]byte, models.KeySize)
		if _, err := rand.Read(raw); err != nil {
			panic(err)
		}
		k, err := models.NewKey(raw)
		if err != nil {
			panic(err)
		}
		models.SetEncryptionKey(k)
	})
}

// KeyFile writes a new random database encryption key file (mode 0600) in a temporary
// directory of t and returns its path, for --db-encryption-key.
func KeyFile(t testing.TB) string {
	t.Helper()
	raw := make([]byte, models.KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), models.KeyFileName)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
