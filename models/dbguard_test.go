package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// hangDeadline is how long an operation on a database that is down may take before the test
// calls it hung: generous, not a measure of speed.
const hangDeadline = 30 * time.Second

// dbOps are the kinds of database work the server does, each returning its error: a read,
// a write (in gorm's implicit transaction), an explicit transaction, a raw statement, a raw
// query scanned (gorm's row chain) and a ping.
var dbOps = map[string]func(db *gorm.DB) error{
	"read": func(db *gorm.DB) error {
		var u models.User
		return db.Take(&u, "username = ?", models.AdminUsername).Error
	},
	"write": func(db *gorm.DB) error {
		return db.Model(&models.User{}).Where("username = ?", "nobody").Update("first_name", "x").Error
	},
	"transaction": func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			var n int64
			return tx.Model(&models.User{}).Count(&n).Error
		})
	},
	"raw": func(db *gorm.DB) error { return db.Exec("SELECT 1").Error },
	// Scan, Row and Rows go through gorm's row chain, whose rows are read after it ends.
	"scan": func(db *gorm.DB) error {
		var n int
		return db.Raw("SELECT 1").Scan(&n).Error
	},
	"ping": func(db *gorm.DB) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return models.Ping(ctx, db)
	},
}

// runBounded runs op and fails t if it has not returned within hangDeadline.
func runBounded(t *testing.T, name string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- op() }()
	select {
	case err := <-done:
		t.Logf("%s answered in %s: %v", name, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(hangDeadline):
		t.Fatalf("%s hung: no answer after %s", name, hangDeadline)
		return nil
	}
}

// expectUnavailable runs every kind of database work and fails t unless each fails at once
// as an UnavailableError of the database.
func expectUnavailable(t *testing.T, db *gorm.DB) {
	t.Helper()
	for name, op := range dbOps {
		err := runBounded(t, name, func() error { return op(db) })
		var ue *models.UnavailableError
		if !errors.As(err, &ue) || ue.Service != "database" {
			t.Errorf("%s during the outage: %v (%T), want an UnavailableError of the database", name, err, err)
		}
	}
}

// expectRecovered waits until every kind of database work succeeds again, and fails t if that
// takes longer than hangDeadline. It logs how long recovery took.
func expectRecovered(t *testing.T, db *gorm.DB) {
	t.Helper()
	start := time.Now()
	for name, op := range dbOps {
		for {
			err := op(db)
			if err == nil {
				break
			}
			if time.Since(start) > hangDeadline {
				t.Fatalf("%s still fails %s after the database came back: %v", name, hangDeadline, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("recovered %s after the database came back", time.Since(start).Round(time.Millisecond))
}

// openThroughProxy opens a new PostgreSQL database through a proxy the test controls.
func openThroughProxy(t *testing.T, timeout time.Duration) (*gorm.DB, *testenv.Proxy) {
	t.Helper()
	proxy, url := testenv.ProxyURL(t, testenv.PostgresURL(t))
	db := testenv.OpenDB(t, testenv.Engine{Name: "postgres", DatabaseURL: url}, models.WithStatementTimeout(timeout))
	return db, proxy
}

// TestDatabaseGone: while PostgreSQL is unreachable (connections cut, new ones refused)
// every kind of statement fails at once with an UnavailableError, a statement in flight
// included; once it is back the same pool works again without being reopened.
func TestDatabaseGone(t *testing.T) {
	t.Parallel()
	db, proxy := openThroughProxy(t, 0)
	expectRecovered(t, db)

	inFlight := make(chan error, 1)
	go func() { inFlight <- db.Exec("SELECT pg_sleep(20)").Error }()
	for running := int64(0); running == 0; {
		if err := db.Raw("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'").Scan(&running).Error; err != nil {
			t.Fatal(err)
		}
	}
	proxy.Cut()
	if err := runBounded(t, "statement in flight", func() error { return <-inFlight }); !models.IsUnavailable(err) {
		t.Errorf("statement in flight when the server went: %v, want unavailable", err)
	}
	expectUnavailable(t, db)
	proxy.Restore()
	expectRecovered(t, db)
}

// TestDatabaseFrozen: a server that accepts connections and reads but never answers makes
// every statement, BEGIN included, fail with an UnavailableError once the statement timeout
// passed, rather than hang; connections opened while it is frozen give up after
// connect_timeout.
func TestDatabaseFrozen(t *testing.T) {
	t.Parallel()
	db, proxy := openThroughProxy(t, 2*time.Second)
	expectRecovered(t, db)
	proxy.Freeze()
	expectUnavailable(t, db)
	proxy.Restore()
	expectRecovered(t, db)
}

// TestDatabaseFrozenScan: a raw query scanned (gorm's row chain) on a pooled connection to a
// server that stops answering fails at the statement timeout instead of waiting for ever.
func TestDatabaseFrozenScan(t *testing.T) {
	t.Parallel()
	db, proxy := openThroughProxy(t, 2*time.Second)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // the scan below gets the pooled connection, which freezes
	var n int
	if err := db.Raw("SELECT 1").Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("scan before the freeze: %d, %v", n, err)
	}
	proxy.Freeze()
	err = runBounded(t, "scan on a frozen connection", func() error { return db.Raw("SELECT 2").Scan(&n).Error })
	if !models.IsUnavailable(err) {
		t.Errorf("scan on a frozen connection: %v, want unavailable", err)
	}
	proxy.Restore()
}

// TestDatabaseRestart: a real PostgreSQL restarted (pg_ctl stop -m fast ends the sessions with
// 57P01, then the server is down, then back on the same port) makes statements fail as
// unavailable while it is down, and the same pool works once it is back.
func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	pg := testenv.StartOwnPostgres(t)
	db := testenv.OpenDB(t, testenv.Engine{Name: "postgres", DatabaseURL: pg.URL})
	expectRecovered(t, db)
	pg.Stop()
	expectUnavailable(t, db)
	pg.Start()
	expectRecovered(t, db)
}
