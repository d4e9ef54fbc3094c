package fill

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// maxResumeBackoff caps the doubling wait between resumes.
const maxResumeBackoff = 5 * time.Second

// stager is the staging side of one fill: the staging file it appends to, the hash of every
// byte appended so far, and their count. It lives across resumes, so a resumed body goes on
// from where the broken one stopped and nothing staged is read again.
type stager struct {
	f     *Fill
	out   *storage.Writeback
	h     hash.Hash
	total int64 // bytes staged and hashed
	size  int64 // the blob's size, -1 while unknown
	buf   []byte
}

// sourceError is a failure of the Source: a read of its body that broke, or a call to reopen
// it that failed. It is the only kind of error a fill resumes after.
type sourceError struct {
	msg string
	err error
}

func (e *sourceError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// fetch stages body, and when it breaks reopens src at the number of bytes staged, up to the
// resume budget, until the blob's end; it returns the digest of everything staged. Errors
// other than the Source's (a full disk, more bytes than announced) fail at once, as do the
// Source's errors that are not retryable and any error once the fill's context has ended.
func (fs *Fills) fetch(ctx context.Context, st *stager, src Source, body io.ReadCloser) ([]byte, error) {
	attempt := 0
	for {
		err := st.copyFrom(ctx, body)
		body.Close()
		if err == nil {
			return st.h.Sum(nil), nil
		}
		for {
			if err = fs.mayResume(ctx, st, err, attempt); err != nil {
				return nil, err
			}
			attempt++
			wait := min(fs.backoff<<(attempt-1), maxResumeBackoff)
			fs.logger.Warn("resuming blob fill", "digest", st.f.digest, "offset", st.total,
				"attempt", attempt, "budget", fs.resumes, "after", wait, "error", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			var size int64
			body, size, err = src(ctx, st.total)
			if err != nil {
				err = &sourceError{msg: fmt.Sprintf("resume blob %s at offset %d", st.f.digest, st.total), err: err}
				continue
			}
			if err := st.resumed(size); err != nil {
				body.Close()
				return nil, err
			}
			break
		}
	}
}

// mayResume returns nil when the fill may resume after err, and otherwise the error that
// fails it.
func (fs *Fills) mayResume(ctx context.Context, st *stager, err error, attempt int) error {
	var se *sourceError
	switch {
	case !errors.As(err, &se):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("read blob %s from upstream: %w", st.f.digest, context.Cause(ctx))
	case !fs.retryable(se.err):
		return err
	case attempt >= fs.resumes:
		if fs.resumes == 0 {
			return err
		}
		return fmt.Errorf("blob %s: gave up after %d resumes: %w", st.f.digest, attempt, err)
	}
	return nil
}

// resumed checks the size a reopened Source announces against what is staged and the blob's
// size, which it sets when the first answer did not announce one.
func (st *stager) resumed(size int64) error {
	if size < 0 {
		return nil
	}
	if st.size < 0 {
		st.size = st.total + size
		st.f.setSize(st.size)
		return nil
	}
	if st.total+size != st.size {
		return &SizeMismatchError{Digest: st.f.digest, Want: st.size, Got: st.total + size}
	}
	return nil
}

// copyFrom appends body to the staging file through one bounded buffer, hashing it and
// publishing the progress to the fill's readers after each write, until body ends (nil) or
// breaks (*sourceError). With a known size it stops one byte past it, and a body that ends
// short of it fails with a *SizeMismatchError.
func (st *stager) copyFrom(ctx context.Context, body io.ReadCloser) error {
	// Unblock a read stuck on an upstream that ignores the context once the fill times out.
	stop := context.AfterFunc(ctx, func() { _ = body.Close() })
	defer stop()
	var r io.Reader = body
	if st.size >= 0 {
		r = io.LimitReader(body, st.size-st.total+1)
	}
	if st.buf == nil {
		st.buf = make([]byte, bufferSize)
	}
	for {
		n, rerr := r.Read(st.buf)
		if n > 0 {
			if st.size >= 0 && st.total+int64(n) > st.size {
				return &SizeMismatchError{Digest: st.f.digest, Want: st.size, Got: st.total + int64(n)}
			}
			if _, err := st.out.Write(st.buf[:n]); err != nil {
				return fmt.Errorf("stage blob %s: %w", st.f.digest, err)
			}
			st.h.Write(st.buf[:n])
			st.total += int64(n)
			st.f.setWritten(st.total)
			if st.f.progress != nil {
				st.f.progress()
			}
		}
		if rerr == io.EOF {
			if st.size >= 0 && st.total != st.size {
				return &SizeMismatchError{Digest: st.f.digest, Want: st.size, Got: st.total}
			}
			return nil
		}
		if rerr != nil {
			return &sourceError{msg: fmt.Sprintf("read blob %s from upstream at offset %d", st.f.digest, st.total), err: rerr}
		}
	}
}
