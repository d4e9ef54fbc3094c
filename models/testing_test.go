package models_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// openDB opens and migrates the database of engine e (SQLite in a temporary directory when
// e.DatabaseURL is empty); it is closed when t ends.
func openDB(t *testing.T, e testenv.Engine) *gorm.DB { return testenv.OpenDB(t, e) }

// runDB runs fn once per engine with a fresh database, in parallel with other tests.
func runDB(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) { fn(t, openDB(t, e)) })
}

// digest returns the sha256 digest of s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blob stores a blob with the digest of s.
func blob(t *testing.T, db *gorm.DB, s string) *models.Blob {
	t.Helper()
	b, err := models.GetOrCreateBlob(db, &models.Blob{Digest: digest(s), Size: int64(len(s))})
	if err != nil {
		t.Fatalf("blob %s: %v", s, err)
	}
	return b
}

// jsonEq fails the test unless v encodes to the JSON value want.
func jsonEq(t *testing.T, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
