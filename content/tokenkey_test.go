package content

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestTokenKeyShared: two content processes on one database get the same key, so a token one
// issues the other accepts; a process given another key (a --token-key file) refuses it.
func TestTokenKeyShared(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db := testenv.OpenDB(t, e)
		a, err := TokenKey(t.Context(), db, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := TokenKey(t.Context(), db, "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		s, err := a.Issue(now, time.Minute, "http://127.0.0.1:1/token/", "127.0.0.1:1", "admin", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Verify(now, s, "http://127.0.0.1:1/token/", "127.0.0.1:1"); err != nil {
			t.Errorf("the second process refuses the first one's token: %v", err)
		}
		pem, err := token.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "token.pem")
		if err := os.WriteFile(path, pem, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := TokenKey(t.Context(), db, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Verify(now, s, "http://127.0.0.1:1/token/", "127.0.0.1:1"); err == nil {
			t.Error("a process with its own --token-key accepts the database key's token")
		}
		if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, filepath.Join(t.TempDir(), "missing.pem")} {
			if _, err := TokenKey(t.Context(), db, p); err == nil {
				t.Errorf("TokenKey(%s) accepted it", p)
			}
		}
	})
}
