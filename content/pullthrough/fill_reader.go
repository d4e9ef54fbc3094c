package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Fill is one running (or finished) fetch of a blob into storage. Any number of readers follow
// it at their own pace; see NewReader.
type Fill struct {
	driver     storage.Driver
	digest     string
	owner      string        // whose Source this is (Claim)
	onVerified func()        // called once the fetched bytes are verified (Claim)
	done       chan struct{} // closed when the fill has ended and its commit hooks have run
	sizeKnown  chan struct{} // closed once size is set

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change below
	size        int64         // upstream size, or the final size; valid once sizeKnown is closed
	sizeSet     bool
	staging     string // staging file path, "" until created
	stagingGone bool   // the staging file is being moved into storage, or removed
	written     int64  // bytes in the staging file
	verified    bool   // every byte is written and matches the digest (and size)
	stored      bool   // the blob is in the driver
	fetched     bool   // the bytes come from this fill's Source (not found already stored)
	err         error  // why the fill failed

	hooks []CommitFunc // guarded by Fills.mu, not mu
}

func newFill(driver storage.Driver, digest string) *Fill {
	return &Fill{
		driver:    driver,
		digest:    digest,
		done:      make(chan struct{}),
		sizeKnown: make(chan struct{}),
		changed:   make(chan struct{}),
		size:      -1,
	}
}

// Digest returns the digest this fill fetches.
func (f *Fill) Digest() string { return f.digest }

// Done is closed when the fill has ended: the blob is committed and recorded, or the fill failed.
func (f *Fill) Done() <-chan struct{} { return f.done }

// Owner returns the label the fill was claimed with ("" for Start).
func (f *Fill) Owner() string { return f.owner }

// Fetched reports whether the fill's bytes come from its own Source rather than from storage
// (where another fill, maybe of another process, had put them). It is settled once Size has
// returned.
func (f *Fill) Fetched() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched
}

// Err returns why the fill failed, or nil while it runs and after it succeeded.
func (f *Fill) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Size waits until the blob's size is known, from upstream's announcement or, when upstream
// did not announce one, from the end of the fill. It fails when the fill fails first or ctx ends.
func (f *Fill) Size(ctx context.Context) (int64, error) {
	select {
	case <-f.sizeKnown:
	case <-f.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sizeSet {
		return f.size, nil
	}
	if f.err != nil {
		return 0, f.err
	}
	return 0, fmt.Errorf("blob %s: fill ended without a size", f.digest)
}

// NewReader returns a reader of the blob from offset off. It reads the bytes already written
// to the staging file through its own file handle, so it never slows the fill or other readers,
// and waits for bytes not written yet (an offset beyond them waits too, which is how a Range
// request is answered as soon as its bytes exist). It ends with io.EOF only once the whole blob
// is verified; when the fill fails it returns the fill's error instead. After the commit it
// reads from storage. Cancelling ctx stops this reader only. The reader is not safe for
// concurrent use; Close releases its file handle.
func (f *Fill) NewReader(ctx context.Context, off int64) io.ReadCloser {
	return &fillReader{f: f, ctx: ctx, off: off}
}

// broadcast wakes every waiting reader; f.mu must be held.
func (f *Fill) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fill) setSizeLocked(size int64) {
	if size < 0 || f.sizeSet {
		return
	}
	f.size, f.sizeSet = size, true
	close(f.sizeKnown)
}

// setSize records that the Source answered, and the size upstream announced (-1: unknown).
func (f *Fill) setSize(size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetched = true
	f.setSizeLocked(size)
	f.broadcast()
}

func (f *Fill) setStaging(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.staging = path
	f.broadcast()
}

func (f *Fill) setWritten(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written = n
	f.broadcast()
}

// setVerified marks every byte written and checked: readers may end with io.EOF.
func (f *Fill) setVerified(total int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written, f.verified = total, true
	f.setSizeLocked(total)
	f.broadcast()
}

// setStagingGone stops new readers from opening the staging file, which is about to move;
// they wait for the commit (or the failure) instead.
func (f *Fill) setStagingGone() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stagingGone = true
	f.broadcast()
}

// setCommitted marks the blob stored: new readers read it from the driver.
func (f *Fill) setCommitted() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stored, f.stagingGone = true, true
	f.broadcast()
}

// setStored marks a blob found already in storage, so there is nothing to fetch.
func (f *Fill) setStored(size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written, f.verified, f.stored, f.stagingGone = size, true, true, true
	f.setSizeLocked(size)
	f.broadcast()
}

// fail records err and returns the staging file the caller must remove, if any.
func (f *Fill) fail(err error) (staging string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.stagingGone = err, true
	f.broadcast()
	return f.staging
}

func (f *Fill) finalSize() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

// fillReader is the reader NewReader returns.
type fillReader struct {
	f      *Fill
	ctx    context.Context
	off    int64
	file   *os.File      // own handle on the staging file
	stored io.ReadCloser // storage reader, once the blob is committed and file was not open
	closed bool
}

var _ io.ReadCloser = (*fillReader)(nil)

// Read reads the next bytes of the blob, waiting for them if the fill has not written them yet.
func (r *fillReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read blob %s: %w", r.f.digest, os.ErrClosed)
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.off < 0 {
		return 0, fmt.Errorf("read blob %s: negative offset %d", r.f.digest, r.off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.stored != nil {
		n, err := r.stored.Read(p)
		r.off += int64(n)
		return n, err
	}
	f := r.f
	for {
		f.mu.Lock()
		if r.file == nil {
			switch {
			case f.stored:
				written := f.written
				f.mu.Unlock()
				if r.off >= written {
					return 0, io.EOF
				}
				rc, err := f.driver.Reader(r.ctx, mustBlobPath(f.digest), r.off)
				if err != nil {
					return 0, fmt.Errorf("read blob %s: %w", f.digest, err)
				}
				r.stored = rc
				return r.Read(p)
			case f.err != nil:
				err := f.err
				f.mu.Unlock()
				return 0, err
			case f.staging != "" && !f.stagingGone:
				// Opened under the lock, so the file cannot be moved or removed meanwhile; the
				// handle stays valid after that.
				file, err := os.Open(f.staging)
				if err != nil {
					f.mu.Unlock()
					return 0, fmt.Errorf("read blob %s: %w", f.digest, err)
				}
				r.file = file
			default: // nothing to open yet: wait for the staging file or the commit
				changed := f.changed
				f.mu.Unlock()
				if err := r.wait(changed); err != nil {
					return 0, err
				}
				continue
			}
		}
		if f.err != nil && !f.verified {
			err := f.err
			f.mu.Unlock()
			return 0, err
		}
		if avail := f.written - r.off; avail > 0 {
			f.mu.Unlock()
			n, err := r.file.ReadAt(p[:min(int64(len(p)), avail)], r.off)
			r.off += int64(n)
			if n > 0 {
				return n, nil
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read blob %s: staging file: %w", f.digest, err)
		}
		if f.verified {
			f.mu.Unlock()
			return 0, io.EOF
		}
		changed := f.changed
		f.mu.Unlock()
		if err := r.wait(changed); err != nil {
			return 0, err
		}
	}
}

func (r *fillReader) wait(changed <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// Close releases the reader's file handle; it does not affect the fill.
func (r *fillReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	if r.file != nil {
		errs = append(errs, r.file.Close())
	}
	if r.stored != nil {
		errs = append(errs, r.stored.Close())
	}
	return errors.Join(errs...)
}

// mustBlobPath is BlobPath for a digest a fill has already validated.
func mustBlobPath(digest string) string {
	p, err := storage.BlobPath(digest)
	if err != nil {
		panic(err)
	}
	return p
}
