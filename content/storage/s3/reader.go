package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// objectReader reads an object of known size at any position: the first read after a seek
// opens a ranged GET from there, so a reader that seeks costs nothing until it reads.
type objectReader struct {
	ctx  context.Context
	d    *Driver
	path string
	key  string
	size int64
	pos  int64
	body io.ReadCloser
}

var _ io.ReadSeekCloser = (*objectReader)(nil)

func (r *objectReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		body, err := r.d.get(r.ctx, r.path, r.key, r.pos)
		if err != nil {
			return 0, err
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.pos += int64(n)
	if err == io.EOF && r.pos < r.size {
		err = fmt.Errorf("storage: read %s: ended at %d of %d bytes: %w", r.path, r.pos, r.size, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	pos := offset
	switch whence {
	case io.SeekCurrent:
		pos += r.pos
	case io.SeekEnd:
		pos += r.size
	}
	if pos < 0 {
		return r.pos, errors.New("storage: seek before the start of " + r.path)
	}
	if pos != r.pos && r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
	r.pos = pos
	return pos, nil
}

func (r *objectReader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}

// errReadIdle ends an object's read whose store sent nothing for the idle timeout.
var errReadIdle = errors.New("the store sent nothing for too long")

// idleBody is an object's body whose read fails when the store sends nothing for idle: its
// request's context is cancelled, and the read answers a *storage.UnavailableError.
type idleBody struct {
	body   io.ReadCloser
	path   string
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
}

func newIdleBody(body io.ReadCloser, path string, idle time.Duration, cancel context.CancelCauseFunc) *idleBody {
	b := &idleBody{body: body, path: path, idle: idle, cancel: cancel}
	b.timer = time.AfterFunc(idle, func() { cancel(errReadIdle) })
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF && !b.timer.Stop() {
		// The timer fired: the store went quiet, whatever error the cancelled request gave.
		return n, &storage.UnavailableError{Op: "read", Path: b.path, Err: errReadIdle}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}
