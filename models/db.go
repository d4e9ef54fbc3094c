package models

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open connects to the database named by url: a postgres:// URL for PostgreSQL, or empty for
// the embedded SQLite file pulpgo.db in dataDir (pure Go, WAL, immediate transactions and a busy
// timeout so that concurrent writers wait instead of failing, and a case-sensitive LIKE as on
// PostgreSQL). On PostgreSQL every statement is guarded (dbguard.go): bounded in time, and its
// connection failures are UnavailableErrors.
func Open(url, dataDir string, opts ...OpenOption) (*gorm.DB, error) {
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
	pcfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL %s: %w", redactURL(url), err)
	}
	// A server that is gone must be noticed: connecting (TCP and the start-up exchange) gives
	// up after connect_timeout (default 5 s), and idle connections send keepalives so that a
	// dead peer is found within seconds rather than the kernel's two hours.
	if pcfg.ConnectTimeout == 0 {
		pcfg.ConnectTimeout = 5 * time.Second
	}
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	pcfg.DialFunc = dialer.DialContext
	o := openOptions{statementTimeout: DefaultStatementTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	sqlDB := stdlib.OpenDB(*pcfg)
	// Connections are recycled, so that none outlives a server restart or a failover by long
	// (pgx also pings a connection idle for over a second before reusing it).
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: guardedPool{DB: sqlDB, timeout: o.statementTimeout}}), cfg)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s: %w", redactURL(url), err)
	}
	if err := db.Use(dbGuard{timeout: o.statementTimeout}); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// OpenOption changes how Open connects to PostgreSQL.
type OpenOption func(*openOptions)

type openOptions struct{ statementTimeout time.Duration }

// WithStatementTimeout bounds each statement issued without a deadline (DefaultStatementTimeout
// otherwise); d <= 0 keeps the default.
func WithStatementTimeout(d time.Duration) OpenOption {
	return func(o *openOptions) {
		if d > 0 {
			o.statementTimeout = d
		}
	}
}

// IsPostgres reports whether db runs on PostgreSQL.
func IsPostgres(db *gorm.DB) bool { return db.Dialector.Name() == "postgres" }

// Migrate creates or updates every table, creates the admin user (id 1) if missing, checks that the encryption key set with
// SetEncryptionKey is the database's (the first start records it), and seals secrets left in
// plaintext by versions before encryption; running it again changes nothing. On PostgreSQL
// an advisory lock keeps concurrent starts from migrating at once.
func Migrate(db *gorm.DB) error {
	// Waiting for another process's migration and altering big tables may take long: the
	// migration gets an hour rather than the guard's bound on each statement.
	ctx, cancel := context.WithTimeout(context.Background(), migrationTimeout)
	defer cancel()
	return withMigrationLock(db.WithContext(ctx), func(tx *gorm.DB) error {
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

// migrationTimeout bounds a migration, waiting for a concurrent one included.
const migrationTimeout = time.Hour

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

// Ping checks the database connection within ctx.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return wrapConnErr(sqlDB.PingContext(ctx))
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
