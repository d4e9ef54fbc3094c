package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/content/storage"
)

// partSize is the size of the parts of a multipart upload, each read back from the local file
// as it is sent: the memory an upload holds is one HTTP request's buffers, not a part.
const partSize = 16 << 20

// upload is the Stream of Driver: a goroutine sends each full part of the local file as soon
// as Grew reports it; Commit sends the rest and completes the multipart upload (or, for a
// file no larger than one part, puts it with one request).
type upload struct {
	d      *Driver
	path   string
	key    string
	file   *os.File
	ctx    context.Context // the background sends'
	cancel context.CancelFunc
	wake   chan struct{} // a send may be due
	idle   chan struct{} // closed when the background sends have stopped

	mu     sync.Mutex
	avail  int64 // bytes of the file that are final
	ending bool  // Commit or Cancel was called
	done   bool  // committed or cancelled

	// Owned by the background goroutine until idle is closed, then by Commit and Cancel.
	uploadID string
	parts    []minio.CompletePart
	sent     int64
	err      error
}

var _ storage.Stream = (*upload)(nil)

// Stream starts uploading the local file at localPath, while it grows, as the object at p.
func (d *Driver) Stream(ctx context.Context, localPath, p string) (storage.Stream, error) {
	key, err := d.key(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(localPath)
	if err != nil {
		return nil, fmt.Errorf("storage: upload %s to %s: %w", localPath, p, err)
	}
	uctx, cancel := context.WithCancel(ctx)
	u := &upload{d: d, path: p, key: key, file: f, ctx: uctx, cancel: cancel,
		wake: make(chan struct{}, 1), idle: make(chan struct{})}
	go u.background()
	return u, nil
}

// Grew records that the file's first n bytes are final.
func (u *upload) Grew(n int64) {
	u.mu.Lock()
	u.avail = max(u.avail, n)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// background sends every full part as it becomes final, until Commit or Cancel takes over or a
// send fails.
func (u *upload) background() {
	defer close(u.idle)
	for {
		u.mu.Lock()
		avail, ending := u.avail, u.ending
		u.mu.Unlock()
		if ending {
			return
		}
		if avail-u.sent >= partSize {
			if u.err = u.sendPart(u.ctx, partSize); u.err != nil {
				return
			}
			continue
		}
		select {
		case <-u.wake:
		case <-u.ctx.Done():
			u.err = u.ctx.Err()
			return
		}
	}
}

// stop ends the background sends and waits for them; it reports false if the upload was
// already committed or cancelled.
func (u *upload) stop(cancel bool) bool {
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return false
	}
	u.ending = true
	u.mu.Unlock()
	if cancel {
		u.cancel()
	}
	select {
	case u.wake <- struct{}{}:
	default:
	}
	<-u.idle
	return true
}

// Commit sends what is left of the first size bytes and completes the upload.
func (u *upload) Commit(ctx context.Context, size int64) error {
	if !u.stop(false) {
		return fmt.Errorf("storage: commit %s: %w", u.path, os.ErrClosed)
	}
	if err := u.commit(ctx, size); err != nil {
		return storeError(u.path, "commit", err)
	}
	u.mu.Lock()
	u.done = true
	u.mu.Unlock()
	u.cancel()
	return u.file.Close()
}

func (u *upload) commit(ctx context.Context, size int64) error {
	if u.err != nil {
		return u.err
	}
	if size < u.sent {
		return fmt.Errorf("the file shrank to %d bytes after %d were sent", size, u.sent)
	}
	if u.uploadID == "" && size <= partSize {
		_, err := u.d.core.PutObject(ctx, u.d.bucket, u.key, io.NewSectionReader(u.file, 0, size), size, "", "", minio.PutObjectOptions{})
		return err
	}
	for u.sent < size {
		if err := u.sendPart(ctx, min(partSize, size-u.sent)); err != nil {
			return err
		}
	}
	_, err := u.d.core.CompleteMultipartUpload(ctx, u.d.bucket, u.key, u.uploadID, u.parts, minio.PutObjectOptions{})
	return err
}

// sendPart sends the file's next n bytes as the next part, starting the multipart upload first
// if needed.
func (u *upload) sendPart(ctx context.Context, n int64) error {
	if u.uploadID == "" {
		id, err := u.d.core.NewMultipartUpload(ctx, u.d.bucket, u.key, minio.PutObjectOptions{})
		if err != nil {
			return fmt.Errorf("start multipart upload: %w", err)
		}
		u.uploadID = id
	}
	num := len(u.parts) + 1
	part, err := u.d.core.PutObjectPart(ctx, u.d.bucket, u.key, u.uploadID, num, io.NewSectionReader(u.file, u.sent, n), n, minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("upload part %d (bytes %d-%d): %w", num, u.sent, u.sent+n-1, err)
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
	u.sent += n
	return nil
}

// Cancel stops the sends and aborts the multipart upload; a no-op after Commit.
func (u *upload) Cancel(ctx context.Context) error {
	if !u.stop(true) {
		return nil
	}
	u.mu.Lock()
	u.done = true
	u.mu.Unlock()
	_ = u.file.Close()
	if u.uploadID == "" {
		return nil
	}
	if err := u.d.core.AbortMultipartUpload(ctx, u.d.bucket, u.key, u.uploadID); err != nil {
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && resp.Code == minio.NoSuchUpload {
			return nil
		}
		return storeError(u.path, "abort upload", err)
	}
	return nil
}
