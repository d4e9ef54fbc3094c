package fill

import (
	"context"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// abortTimeout bounds the abort of an upload whose fill failed, which runs even when the
// fill's own context has ended.
const abortTimeout = time.Minute

// upload sends a fill's staging file to a driver that can take a file while it grows
// (storage.Streamer, object storage): every byte the fill writes is reported to the driver's
// Stream, which uploads it in the background, so the commit sends only the tail instead of
// the whole blob. The Stream is committed only once the digest is verified, and cancelled
// (its multipart upload aborted) when the fill fails.
type upload struct {
	s         storage.Stream
	stopOnce  sync.Once
	stopped   chan struct{}
	committed bool
}

// startUpload starts the upload of the staging file of f when driver is a storage.Streamer;
// it returns nil otherwise, and the fill commits by Move or a Writer as usual.
func startUpload(ctx context.Context, driver storage.Driver, f *Fill, staging, blobPath string) (*upload, error) {
	st, ok := driver.(storage.Streamer)
	if !ok {
		return nil, nil
	}
	s, err := st.Stream(ctx, staging, blobPath)
	if err != nil {
		return nil, err
	}
	u := &upload{s: s, stopped: make(chan struct{})}
	go u.follow(f)
	return u, nil
}

// follow reports the fill's written bytes to the Stream as they grow, until stop.
func (u *upload) follow(f *Fill) {
	for {
		f.mu.Lock()
		n, changed := f.written, f.changed
		f.mu.Unlock()
		u.s.Grew(n)
		select {
		case <-changed:
		case <-u.stopped:
			return
		}
	}
}

func (u *upload) stop() { u.stopOnce.Do(func() { close(u.stopped) }) }

// commit sends the rest of the staging file's size bytes and makes them the blob.
func (u *upload) commit(ctx context.Context, size int64) error {
	u.stop()
	if err := u.s.Commit(ctx, size); err != nil {
		return err
	}
	u.committed = true
	return nil
}

// close cancels the upload unless it was committed; nil-safe, for a defer.
func (u *upload) close(ctx context.Context) error {
	if u == nil {
		return nil
	}
	u.stop()
	if u.committed {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	return u.s.Cancel(actx)
}
