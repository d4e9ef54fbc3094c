package fill

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

// countingObserver counts what a Fills reports.
type countingObserver struct {
	started, joined, ok, failed, inflight atomic.Int32
}

func (o *countingObserver) FillStarted() { o.started.Add(1); o.inflight.Add(1) }
func (o *countingObserver) FillJoined()  { o.joined.Add(1) }
func (o *countingObserver) FillEnded(ok bool) {
	o.inflight.Add(-1)
	if ok {
		o.ok.Add(1)
	} else {
		o.failed.Add(1)
	}
}

// TestObserver: one fill started and joined by the other callers, ended well; a failing fill
// reported as failed; nothing in flight afterwards.
func TestObserver(t *testing.T) {
	obs := &countingObserver{}
	env := newEnv(t, true, WithObserver(obs))
	data, digest := blob(7, 1<<20)
	var calls atomic.Int32
	gate := make(chan struct{})
	src := staticSource(data, int64(len(data)), &calls, gate)
	var f *Fill
	for range 5 {
		f = env.fills.Start(t.Context(), digest, src, nil)
	}
	close(gate)
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	_, bad := blob(8, 10)
	failing := env.fills.Start(t.Context(), bad, func(context.Context, int64) (io.ReadCloser, int64, error) {
		return nil, 0, errors.New("upstream down")
	}, nil)
	waitDone(t, failing)
	env.fills.Wait()
	if s, j, ok, failed, in := obs.started.Load(), obs.joined.Load(), obs.ok.Load(), obs.failed.Load(), obs.inflight.Load(); s != 2 || j != 4 || ok != 1 || failed != 1 || in != 0 {
		t.Errorf("started %d joined %d ok %d failed %d in flight %d; want 2, 4, 1, 1, 0", s, j, ok, failed, in)
	}
}

// TestObserverStoredMeanwhile: a fill that finds its blob already stored (by another process
// sharing the storage, which held the lock) counts as a join, not a start, and ends nothing.
func TestObserverStoredMeanwhile(t *testing.T) {
	obs := &countingObserver{}
	env := newEnv(t, true, WithObserver(obs))
	data, digest := blob(9, 4096)
	env.put(t, digest, data) // stored by "another process"
	var calls atomic.Int32
	f := env.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	env.fills.Wait()
	if s, j, ok, failed, in, c := obs.started.Load(), obs.joined.Load(), obs.ok.Load(), obs.failed.Load(), obs.inflight.Load(), calls.Load(); s != 0 || j != 1 || ok != 0 || failed != 0 || in != 0 || c != 0 {
		t.Errorf("started %d joined %d ok %d failed %d in flight %d upstream calls %d; want 0, 1, 0, 0, 0, 0", s, j, ok, failed, in, c)
	}
}
