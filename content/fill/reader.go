package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pulpgo/pulpgo/content/storage"
)

// NewReader returns a reader of the blob from offset off. It reads the bytes already written
// to the staging file through its own file handle, so it never slows the fill or other readers,
// and waits for bytes not written yet (an offset beyond them waits too, which is how a Range
// request is answered as soon as its bytes exist). It never returns the blob's last byte
// before the digest is verified (see Fill.readable), and ends with io.EOF only once the whole
// blob is verified; when the fill fails it returns the fill's error instead. So a consumer that
// stops at the blob's length (a Content-Length, a Range that reaches the end) has the whole
// blob only when it is the blob it asked for. After the commit it reads from storage.
// Cancelling ctx stops this reader only. The reader is not safe for concurrent use; Close
// releases its file handle.
func (f *Fill) NewReader(ctx context.Context, off int64) io.ReadCloser {
	return &fillReader{f: f, ctx: ctx, off: off}
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
		if avail := f.readable() - r.off; avail > 0 {
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
