package pullthrough

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RecordItem is one pulled manifest (and the tag it was pulled by, if any) to record.
type RecordItem struct {
	Digest string
	Tag    string
}

// Recorder turns pulled manifests into content of a repository (a task, so pulls never wait).
type Recorder interface {
	Record(ctx context.Context, repositoryID string, items []RecordItem) error
}

// batcher gathers the manifests one pull fetches (an index, its platform manifest...) and
// records them together once the repository has been quiet for a moment, so that one pulled
// image becomes one repository version.
type batcher struct {
	rec      Recorder
	quiet    time.Duration
	maxDelay time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]*batch
	wg      sync.WaitGroup
}

type batch struct {
	items []RecordItem
	seen  map[RecordItem]bool
	first time.Time
	timer *time.Timer
}

func newBatcher(rec Recorder, quiet, maxDelay time.Duration, log *slog.Logger) *batcher {
	return &batcher{rec: rec, quiet: quiet, maxDelay: maxDelay, log: log, pending: map[string]*batch{}}
}

// add queues item for repositoryID.
func (b *batcher) add(repositoryID string, item RecordItem) {
	if b.rec == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bt, ok := b.pending[repositoryID]
	if !ok {
		bt = &batch{seen: map[RecordItem]bool{}, first: time.Now()}
		b.pending[repositoryID] = bt
		b.wg.Add(1)
		bt.timer = time.AfterFunc(b.quiet, func() { b.flush(repositoryID, bt) })
	} else if time.Since(bt.first) < b.maxDelay && bt.timer.Stop() {
		// Re-arm only a timer that has not fired: a fired one's flush is waiting for b.mu and
		// takes this item too; re-arming it would flush the batch a second time.
		bt.timer.Reset(b.quiet)
	}
	if !bt.seen[item] {
		bt.seen[item] = true
		bt.items = append(bt.items, item)
	}
}

func (b *batcher) flush(repositoryID string, bt *batch) {
	defer b.wg.Done()
	b.mu.Lock()
	if b.pending[repositoryID] == bt {
		delete(b.pending, repositoryID)
	}
	items := bt.items
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.rec.Record(ctx, repositoryID, items); err != nil {
		b.log.Error("recording pulled content failed", "repository", repositoryID, "err", err)
	}
}

// close records everything pending now.
func (b *batcher) close() {
	b.mu.Lock()
	var flush []func()
	for id, bt := range b.pending {
		if bt.timer.Stop() {
			id, bt := id, bt
			flush = append(flush, func() { b.flush(id, bt) })
		}
	}
	b.mu.Unlock()
	for _, f := range flush {
		f()
	}
	b.wg.Wait()
}
