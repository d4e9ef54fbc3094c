package fill

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Transient runs fills whose blobs are served but never kept (a remote's streamed policy).
// They are ordinary fills (one per digest at a time, detached, verified before the last byte
// goes out, readers following the staging file), except that they commit into a scratch
// store of their own below the Staging instead of storage. A fill never finds a blob there
// (so every fill after the last one ended fetches again), and the scratch copy of a digest is
// deleted once no fill of it runs and no caller of Claim still reads it.
type Transient struct {
	fills   *Fills
	scratch *storage.Filesystem
	logger  *slog.Logger

	mu      sync.Mutex
	refs    map[string]int // users of the scratch copy, by digest
	deleted func(string)   // tests: called once a digest's scratch copy is gone
}

// transientDir is the scratch store's directory in the Staging (removed with it).
const transientDir = "transient"

// NewTransient returns Transient fills that stage in staging, with opts as for New (a Locker
// is pointless here: nothing is shared through storage). A nil logger discards.
func NewTransient(staging *Staging, logger *slog.Logger, opts ...Option) (*Transient, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	scratch, err := storage.NewFilesystem(filepath.Join(staging.Dir(), transientDir))
	if err != nil {
		return nil, err
	}
	t := &Transient{scratch: scratch, logger: logger, refs: map[string]int{}}
	t.fills = New(unstored{scratch}, staging, logger, append(opts, WithLocker(NoLocker{}))...)
	return t, nil
}

// Claim is Fills.Claim for a blob that is not kept. The fill's readers may be used while ctx
// lives (the request the blob is served to): the scratch copy they may read after the fill
// ends is deleted once ctx has ended and no other fill or caller of the digest remains.
func (t *Transient) Claim(ctx context.Context, digest, owner string, src Source) (f *Fill, started bool) {
	t.acquire(digest)
	context.AfterFunc(ctx, func() { t.release(digest) })
	f, started = t.fills.Claim(ctx, digest, owner, src, nil)
	if started {
		t.acquire(digest)
		go func() {
			<-f.Done()
			t.release(digest)
		}()
	}
	return f, started
}

// Running returns the transient fill of digest in progress, or nil.
func (t *Transient) Running(digest string) *Fill { return t.fills.Running(digest) }

// Wait blocks until every transient fill started so far has ended.
func (t *Transient) Wait() { t.fills.Wait() }

// Close waits for the fills and releases the scratch store (its files go with the Staging).
func (t *Transient) Close() error {
	t.fills.Wait()
	return t.scratch.Close()
}

func (t *Transient) acquire(digest string) {
	t.mu.Lock()
	t.refs[digest]++
	t.mu.Unlock()
}

// release drops one user of digest's scratch copy, and deletes the copy with the last one.
func (t *Transient) release(digest string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refs[digest]--
	if t.refs[digest] > 0 {
		return
	}
	delete(t.refs, digest)
	p, err := storage.BlobPath(digest)
	if err != nil {
		return
	}
	err = t.scratch.Delete(context.Background(), p)
	var nf *storage.PathNotFoundError
	if err != nil && !errors.As(err, &nf) {
		t.logger.Warn("remove streamed blob", "digest", digest, "error", err)
	}
	if t.deleted != nil {
		t.deleted(digest)
	}
}

// unstored is the scratch store as a transient fill sees it: a blob is never found there
// (Stat), so each fill fetches, while readers read a committed copy and commits move into it.
type unstored struct{ *storage.Filesystem }

// Stat answers that no blob is stored.
func (u unstored) Stat(_ context.Context, p string) (storage.FileInfo, error) {
	return storage.FileInfo{}, &storage.PathNotFoundError{Path: p}
}
