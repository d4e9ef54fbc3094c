package fill

import (
	"context"
	"fmt"
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
	progress   func()        // restarts the fill's timeout; called after each write
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

	counted bool // told the observer it started; used by the fill's own goroutine only
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

// pending is how many bytes of its announced size the fill has yet to write: 0 once it has
// ended, found the blob stored, or announced no size.
func (f *Fill) pending() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sizeSet || f.stored || f.err != nil || f.stagingGone {
		return 0
	}
	return max(f.size-f.written, 0)
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

// readable returns how many bytes of the blob readers may have now; f.mu must be held. It is
// every byte written, except the blob's last one until the digest is verified: the bytes that
// complete a blob are what makes a consumer that counts them believe it has the blob, so they
// go out only once they are known to be the right ones. With an announced size the last byte
// is the one at size-1; without one, any byte written may be the last, so the latest one waits
// for the next write or the verification.
func (f *Fill) readable() int64 {
	if f.verified {
		return f.written
	}
	if f.sizeSet && f.written < f.size {
		return f.written
	}
	return max(f.written-1, 0)
}

func (f *Fill) finalSize() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}
