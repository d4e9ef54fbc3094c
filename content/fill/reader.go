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

var (
	_ io.ReadCloser = (*fillReader)(nil)
	_ io.WriterTo   = (*fillReader)(nil)
)

// Read reads the next bytes of the blob, waiting for them if the fill has not written them yet.
func (r *fillReader) Read(p []byte) (int, error) {
	if err := r.usable(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.stored != nil {
		n, err := r.stored.Read(p)
		r.off += int64(n)
		return n, err
	}
	avail, err := r.next()
	if err != nil {
		return 0, err
	}
	if r.stored != nil {
		return r.Read(p)
	}
	n, err := r.file.ReadAt(p[:min(int64(len(p)), avail)], r.off)
	r.off += int64(n)
	if n > 0 {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return 0, fmt.Errorf("read blob %s: staging file: %w", r.f.digest, err)
}

// WriteTo writes the rest of the blob to w as the fill makes it readable. When w reads from
// files (a net/http response without chunking, over TCP) the bytes go from the staging file
// or storage to the socket with sendfile, never through this process's memory; otherwise it
// copies through a buffer. It ends like Read: nil at the verified end, the fill's error when
// the fill fails, and w's error when w fails.
func (r *fillReader) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return io.CopyBuffer(w, onlyReader{r}, make([]byte, bufferSize))
	}
	var total int64
	for {
		if err := r.usable(); err != nil {
			return total, err
		}
		if r.stored != nil {
			n, err := rf.ReadFrom(r.stored)
			r.off += n
			return total + n, err
		}
		avail, err := r.next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if r.stored != nil {
			continue
		}
		if _, err := r.file.Seek(r.off, io.SeekStart); err != nil {
			return total, fmt.Errorf("read blob %s: staging file: %w", r.f.digest, err)
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: r.file, N: avail})
		r.off += n
		total += n
		if err != nil {
			return total, err
		}
		if n < avail {
			return total, fmt.Errorf("read blob %s: staging file: %w", r.f.digest, io.ErrUnexpectedEOF)
		}
	}
}

// usable checks the reader before any read: open, its context live, its offset valid.
func (r *fillReader) usable() error {
	if r.closed {
		return fmt.Errorf("read blob %s: %w", r.f.digest, os.ErrClosed)
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if r.off < 0 {
		return fmt.Errorf("read blob %s: negative offset %d", r.f.digest, r.off)
	}
	return nil
}

// next waits until bytes at r.off may be read and says how many, from r.file (the staging
// file, opened on the first call); once the blob is committed before the staging file was
// opened, it sets r.stored instead and returns 0. It returns io.EOF at the verified end and
// the fill's error when the fill fails.
func (r *fillReader) next() (int64, error) {
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
				return 0, nil
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
			return avail, nil
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

// onlyReader hides a reader's WriteTo, so that io.Copy does not call it back.
type onlyReader struct{ io.Reader }

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
