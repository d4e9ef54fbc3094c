package pullthrough

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type fakeRecorder struct {
	mu    sync.Mutex
	calls [][]RecordItem
	done  chan struct{}
}

func (f *fakeRecorder) Record(_ context.Context, _ string, items []RecordItem) error {
	f.mu.Lock()
	f.calls = append(f.calls, items)
	f.mu.Unlock()
	f.done <- struct{}{}
	return nil
}

// TestBatcherGathersOnePull checks that the manifests of one pull, added in quick succession,
// are recorded together once, without duplicates.
func TestBatcherGathersOnePull(t *testing.T) {
	rec := &fakeRecorder{done: make(chan struct{}, 4)}
	b := newBatcher(rec, 50*time.Millisecond, time.Second, slog.Default())
	b.add("repo", RecordItem{Digest: "sha256:index", Tag: "latest"})
	b.add("repo", RecordItem{Digest: "sha256:child"})
	b.add("repo", RecordItem{Digest: "sha256:child"})
	select {
	case <-rec.done:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing recorded")
	}
	b.close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 1 || len(rec.calls[0]) != 2 {
		t.Fatalf("calls = %v, want one call with 2 items", rec.calls)
	}
}

// TestBatcherCloseFlushes checks that close records what is pending at once.
func TestBatcherCloseFlushes(t *testing.T) {
	rec := &fakeRecorder{done: make(chan struct{}, 4)}
	b := newBatcher(rec, time.Hour, time.Hour, slog.Default())
	b.add("a", RecordItem{Digest: "sha256:1"})
	b.add("b", RecordItem{Digest: "sha256:2"})
	b.close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 2 {
		t.Fatalf("calls = %v, want 2", rec.calls)
	}
}

// countingRecorder counts how often each item is recorded.
type countingRecorder struct {
	mu    sync.Mutex
	count map[RecordItem]int
}

func (c *countingRecorder) Record(_ context.Context, _ string, items []RecordItem) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range items {
		c.count[it]++
	}
	return nil
}

// TestBatcherAddAfterTimerFiredRecordsOnce checks that an item added while a batch's timer has
// fired but its flush has not taken the lock yet is recorded once: re-arming the fired timer
// ran the flush of that batch twice (two versions for one pull, and a negative WaitGroup).
func TestBatcherAddAfterTimerFiredRecordsOnce(t *testing.T) {
	rec := &countingRecorder{count: map[RecordItem]int{}}
	b := newBatcher(rec, time.Microsecond, time.Hour, slog.Default())
	const n = 20000
	for i := range n {
		b.add("repo", RecordItem{Digest: "sha256:" + string(rune('a'+i%26)), Tag: time.Duration(i).String()})
	}
	b.close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.count) != n {
		t.Fatalf("%d items recorded, want %d", len(rec.count), n)
	}
	for it, c := range rec.count {
		if c != 1 {
			t.Fatalf("%v recorded %d times, want once", it, c)
		}
	}
}
