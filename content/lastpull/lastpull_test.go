package lastpull_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/lastpull"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// countWrites counts the statements db runs that write last_pulls (a gorm callback after
// every create, update, delete and raw statement).
func countWrites(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	count := func(tx *gorm.DB) {
		if strings.Contains(tx.Statement.SQL.String(), "last_pulls") {
			n.Add(1)
		}
	}
	for name, err := range map[string]error{
		"create": db.Callback().Create().After("gorm:create").Register("test:count_create", count),
		"update": db.Callback().Update().After("gorm:update").Register("test:count_update", count),
		"delete": db.Callback().Delete().After("gorm:delete").Register("test:count_delete", count),
		"raw":    db.Callback().Raw().After("gorm:raw").Register("test:count_raw", count),
	} {
		if err != nil {
			t.Fatalf("register %s callback: %v", name, err)
		}
	}
	return &n
}

// TestFlushBatches: noting pulls writes nothing to the database; a flush writes all the
// digests noted since the last one in one statement (per 500 digests), with their times;
// a later flush never moves a digest's time back; Close flushes what is left.
func TestFlushBatches(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		db := testenv.OpenDB(t, e)
		writes := countWrites(t, db)
		// An interval no test run reaches: only the explicit flushes write.
		tr := lastpull.New(db, nil, time.Hour)
		defer tr.Close()

		var digests []string
		for i := range 120 {
			digests = append(digests, digest(fmt.Sprint("blob", i)))
		}
		before := models.Now()
		for range 50 { // 6000 requests
			for _, d := range digests {
				tr.Note(d)
			}
		}
		if n := writes.Load(); n != 0 {
			t.Fatalf("%d statements wrote last_pulls while pulls were noted, want 0", n)
		}
		if n := tr.Pending(); n != len(digests) {
			t.Fatalf("%d digests pending, want %d", n, len(digests))
		}
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load(); n != 1 {
			t.Fatalf("flush of %d digests ran %d statements on last_pulls, want 1", len(digests), n)
		}
		got, err := models.LastPulled(db, digests)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(digests) {
			t.Fatalf("%d digests have a last pull time, want %d", len(got), len(digests))
		}
		for d, at := range got {
			if at.Before(before.Add(-time.Millisecond)) || at.After(models.Now().Add(time.Millisecond)) {
				t.Errorf("last pull of %s at %s, want between %s and now", d, at, before)
			}
		}
		// An older time (a process flushing late) does not move the stored one back.
		first := got[digests[0]]
		if err := models.RecordLastPulls(db, map[string]time.Time{digests[0]: first.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		later, err := models.LastPulled(db, digests[:1])
		if err != nil {
			t.Fatal(err)
		}
		if !later[digests[0]].Equal(first) {
			t.Errorf("after an older flush the last pull of %s is %s, want %s", digests[0], later[digests[0]], first)
		}
		// Nothing noted: a flush writes nothing. A pull noted then Close: written.
		w := writes.Load()
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load(); n != w {
			t.Errorf("an empty flush ran %d statements", n-w)
		}
		tr.Note(digests[1])
		tr.Close()
		again, err := models.LastPulled(db, digests[1:2])
		if err != nil {
			t.Fatal(err)
		}
		if !again[digests[1]].After(got[digests[1]]) {
			t.Errorf("after Close the last pull of %s is %s, want after %s", digests[1], again[digests[1]], got[digests[1]])
		}
	})
}
