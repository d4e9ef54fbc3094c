package testenv

import (
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// OpenDB opens and migrates the database of engine e (SQLite in a temporary directory when
// e.DatabaseURL is empty), with the test key for encrypted columns; it is closed when t ends.
// It is the one database set-up of the integration tests; opts change how it connects to
// PostgreSQL.
func OpenDB(t testing.TB, e Engine, opts ...models.OpenOption) *gorm.DB {
	t.Helper()
	UseEncryptionKey()
	db, err := models.Open(e.DatabaseURL, t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := models.Migrate(db); err != nil {
		t.Fatalf("migrate database: %v", err)
	}
	return db
}
