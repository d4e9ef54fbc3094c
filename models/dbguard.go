package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// DefaultStatementTimeout bounds each PostgreSQL statement, BEGIN and COMMIT issued without a
// deadline of its own, so that a server that accepts connections but never answers (frozen,
// or behind a dead network path) makes requests fail with a 503 instead of hanging.
// Long work (migrations, tasks' bulk statements) sets its own deadline.
const DefaultStatementTimeout = 20 * time.Second

// dbGuard is the boundary between pulpgo and PostgreSQL: a gorm plugin that gives every
// statement without a deadline one (statementTimeout), and wraps the connection-level
// failures of every statement as UnavailableError("database"), which the API and the
// registry answer 503.
type dbGuard struct{ timeout time.Duration }

const guardCancelKey = "pulpgo:guard_cancel"

func (dbGuard) Name() string { return "pulpgo:dbguard" }

// Initialize registers the guard first and last in each of gorm's callback chains. The row
// chain (Row, Rows, and Scan through them) reads its rows after the chain ends: its deadline
// is ended by its own timer, not by the chain's end.
func (g dbGuard) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	for _, p := range []struct {
		before, after func(string, func(*gorm.DB)) error
		bound         bool
	}{
		{cb.Create().Before("*").Register, cb.Create().After("*").Register, true},
		{cb.Query().Before("*").Register, cb.Query().After("*").Register, true},
		{cb.Update().Before("*").Register, cb.Update().After("*").Register, true},
		{cb.Delete().Before("*").Register, cb.Delete().After("*").Register, true},
		{cb.Raw().Before("*").Register, cb.Raw().After("*").Register, true},
		{cb.Row().Before("*").Register, cb.Row().After("*").Register, false},
	} {
		if !p.bound {
			if err := p.before("pulpgo:deadline", g.setRowDeadline); err != nil {
				return err
			}
		}
		if p.bound {
			if err := p.before("pulpgo:deadline", g.setDeadline); err != nil {
				return err
			}
		}
		if err := p.after("pulpgo:unavailable", g.classify); err != nil {
			return err
		}
	}
	return nil
}

// setDeadline gives the statement a deadline when its context has none.
func (g dbGuard) setDeadline(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	db.Statement.Context = ctx
	db.Statement.Settings.Store(guardCancelKey, cancel)
}

// setRowDeadline gives a statement of the row chain a deadline when its context has none,
// ended by its timer: the caller reads the rows after the chain (a frozen server then fails
// the read after the timeout instead of holding it).
func (g dbGuard) setRowDeadline(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	time.AfterFunc(g.timeout+time.Second, cancel) // after the deadline: frees the context
	db.Statement.Context = ctx
}

// classify ends the statement's own deadline and wraps a connection failure.
func (g dbGuard) classify(db *gorm.DB) {
	if c, ok := db.Statement.Settings.LoadAndDelete(guardCancelKey); ok {
		c.(context.CancelFunc)()
	}
	db.Error = wrapConnErr(db.Error)
}

// dbConnFailed reports whether err, returned by the database driver, means the server could
// not be reached or did not answer rather than that it refused the statement: everything
// IsUnavailable knows, a deadline passed, the driver's "conn closed", a connection that
// ended mid-answer (EOF: at this boundary it can only be the server's socket), a reset or
// refused connection, or a failure pgx knows happened before anything was sent.
// A client's own cancellation (context.Canceled) is not one: nobody waits for that answer.
func dbConnFailed(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return IsUnavailable(err) || netFailure(err) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err)
}

// guardedPool is the connection pool gorm uses on PostgreSQL: sql.DB, except that BEGIN,
// COMMIT and ROLLBACK get statementTimeout too (gorm runs them outside its callbacks) and
// their connection failures become UnavailableErrors.
type guardedPool struct {
	*sql.DB
	timeout time.Duration
}

var (
	_ gorm.ConnPool         = guardedPool{}
	_ gorm.ConnPoolBeginner = guardedPool{}
	_ gorm.GetDBConnector   = guardedPool{}
)

// GetDBConn is the pool's sql.DB, for gorm's DB().
func (p guardedPool) GetDBConn() (*sql.DB, error) { return p.DB, nil }

// Ping checks the connection within the timeout (gorm pings once on open).
func (p guardedPool) Ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	return wrapConnErr(p.PingContext(ctx))
}

// BeginTx begins a transaction. Its context lives as long as the transaction (database/sql
// rolls it back when the context ends), so the bound is a timer that cancels it only if BEGIN
// has not answered in time; COMMIT and ROLLBACK arm the same timer.
func (p guardedPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	if _, ok := ctx.Deadline(); ok {
		tx, err := p.DB.BeginTx(ctx, opts)
		if err != nil {
			return nil, wrapConnErr(err)
		}
		return &guardedTx{Tx: tx, db: p.DB}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var tx *sql.Tx
	err := bounded(p.timeout, cancel, func() error {
		var err error
		tx, err = p.DB.BeginTx(ctx, opts)
		return err
	}, true)
	if err != nil {
		if tx != nil {
			_ = tx.Rollback()
		}
		cancel()
		return nil, err
	}
	return &guardedTx{Tx: tx, db: p.DB, cancel: cancel, timeout: p.timeout}, nil
}

// guardedTx is a transaction of guardedPool (a pointer: gorm checks committers for nil).
type guardedTx struct {
	*sql.Tx
	db      *sql.DB
	cancel  context.CancelFunc // nil when the caller's context has a deadline
	timeout time.Duration
}

var (
	_ gorm.TxCommitter    = (*guardedTx)(nil)
	_ gorm.GetDBConnector = (*guardedTx)(nil)
)

func (t *guardedTx) GetDBConn() (*sql.DB, error) { return t.db, nil }

func (t *guardedTx) Commit() error   { return t.end(t.Tx.Commit) }
func (t *guardedTx) Rollback() error { return t.end(t.Tx.Rollback) }

func (t *guardedTx) end(f func() error) error {
	if t.cancel == nil {
		return wrapConnErr(f())
	}
	defer t.cancel()
	return bounded(t.timeout, t.cancel, f, false)
}

// bounded runs f, calling cancel (which ends f's context) if it has not returned within d, and
// wraps its connection failures. When the timer fired the database did not answer in time;
// with lateFails even a success is one (a BEGIN that answered just then has a cancelled
// context: its transaction is unusable).
func bounded(d time.Duration, cancel context.CancelFunc, f func() error, lateFails bool) error {
	timer := time.AfterFunc(d, cancel)
	err := f()
	if !timer.Stop() && (err != nil || lateFails) {
		if err == nil {
			err = context.DeadlineExceeded
		}
		return Unavailable("database", fmt.Errorf("no answer within %s: %w", d, err))
	}
	return wrapConnErr(err)
}

// wrapConnErr wraps err as an UnavailableError of the database when it is a connection
// failure.
func wrapConnErr(err error) error {
	if err != nil && dbConnFailed(err) && !errors.As(err, new(*UnavailableError)) {
		return Unavailable("database", err)
	}
	return err
}
