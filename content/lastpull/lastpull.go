// Package lastpull notes when each manifest and blob was last served, so that a storage
// quota evicts the images least recently pulled. A request only writes the time into a map
// in memory; a Tracker writes what it noted to the database in batches, every flush interval
// and when it is closed (models.RecordLastPulls: one upsert per batch, keeping the later
// time), so that pulls through any content process count and survive a restart, at no
// database write per request.
package lastpull

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

// DefaultFlushInterval is how often a Tracker writes its noted pulls when none is set.
const DefaultFlushInterval = 30 * time.Second

// Tracker keeps the pull times noted since its last flush.
type Tracker struct {
	db    *gorm.DB
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]time.Time

	flushMu sync.Mutex // one flush at a time: a slow write never overlaps the next
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Tracker writing to db every interval (DefaultFlushInterval when zero or
// less). Close writes what is left and stops it.
func New(db *gorm.DB, logger *slog.Logger, interval time.Duration) *Tracker {
	if logger == nil {
		logger = slog.Default()
	}
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	t := &Tracker{db: db, log: logger, every: interval, now: models.Now,
		pending: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop()
	return t
}

// Note records that digest was served now. It touches only memory.
func (t *Tracker) Note(digest string) {
	now := t.now()
	t.mu.Lock()
	t.pending[digest] = now
	t.mu.Unlock()
}

// Flush writes the pulls noted since the last flush. On a failed write the batch is kept
// (a later note of a digest wins over its older time) for the next flush.
func (t *Tracker) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	batch := t.pending
	t.pending = map[string]time.Time{}
	t.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := models.RecordLastPulls(t.db.WithContext(ctx), batch); err != nil {
		t.mu.Lock()
		for d, at := range batch {
			if cur, ok := t.pending[d]; !ok || cur.Before(at) {
				t.pending[d] = at
			}
		}
		t.mu.Unlock()
		return err
	}
	return nil
}

// Pending returns how many digests wait for the next flush.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *Tracker) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.every)
		if err := t.Flush(ctx); err != nil {
			t.log.Warn("recording last pull times", "count", t.Pending(), "err", err)
		}
		cancel()
	}
}

// Close stops the periodic flush and writes what is left (on shutdown: the times survive a
// restart).
func (t *Tracker) Close() {
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := t.Flush(ctx); err != nil {
			t.log.Warn("recording last pull times at shutdown", "count", t.Pending(), "err", err)
		}
	})
}
