package models

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open connects to the database named by url: a postgres:// URL for PostgreSQL, or empty for
// the embedded SQLite file pulpgo.db in dataDir (pure Go, WAL, immediate transactions and a busy
// timeout so that concurrent writers wait instead of failing, and a case-sensitive LIKE as on
// PostgreSQL).
func Open(url, dataDir string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Default.LogMode(logger.Silent), TranslateError: true}
	if url == "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
		}
		dsn := filepath.Join(dataDir, "pulpgo.db") +
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(0)" +
			"&_pragma=case_sensitive_like(1)&_txlock=immediate"
		db, err := gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite database in %s: %w", dataDir, err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		sqlDB.SetMaxOpenConns(8)
		return db, nil
	}
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("unsupported database URL %q: want postgres://... or empty for embedded SQLite", redactURL(url))
	}
	db, err := gorm.Open(postgres.Open(url), cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURL(url), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// IsPostgres reports whether db runs on PostgreSQL.
func IsPostgres(db *gorm.DB) bool { return db.Dialector.Name() == "postgres" }

// Migrate creates or updates every table, creates the admin user (id 1) if missing, checks that the encryption key set with
// SetEncryptionKey is the database's (the first start records it), and seals secrets left in
// plaintext by versions before encryption; running it again changes nothing. On PostgreSQL
// an advisory lock keeps concurrent starts from migrating at once.
func Migrate(db *gorm.DB) error {
	return withMigrationLock(db, func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&Remote{}, &Repository{}, &RepositoryVersion{}, &RepositoryContent{},
			&Distribution{}, &Namespace{}, &Blob{}, &Manifest{}, &ManifestBlob{}, &ManifestListManifest{},
			&Tag{}, &Task{}, &TaskResource{}, &AppStatus{}, &EncryptionKeyCheck{}, &ContentGuard{},
			&RemoteArtifact{}, &TokenKey{}, &Upload{}, &User{}, &PendingBlob{}, &UpstreamStatus{}, &ACMEObject{}, &ACMELock{},
			&LastPull{}); err != nil {
			return err
		}
		if err := ensureAdmin(tx); err != nil {
			return err
		}
		return checkKey(tx)
	})
}

func withMigrationLock(db *gorm.DB, f func(*gorm.DB) error) error {
	if !IsPostgres(db) {
		return f(db)
	}
	return db.Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(24817)").Error; err != nil {
			return err
		}
		defer conn.Exec("SELECT pg_advisory_unlock(24817)")
		return f(conn)
	})
}

// Ping checks the database connection.
func Ping(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Ping()
}

// redactURL hides the password of a connection URL.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	creds := u[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return u[:scheme+3] + creds[:i] + ":xxxxx" + u[at:]
	}
	return u
}
