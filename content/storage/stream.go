package storage

import (
	"context"
	"time"
)

// Streamer is implemented by drivers that can upload an object from a local file while the
// file is still being written (object storage, where a commit is an upload rather than a
// rename): the upload then runs beside the write and the commit only sends the rest.
type Streamer interface {
	// Stream starts uploading the local file at localPath as the object at path. Nothing is
	// visible at path until the Stream's Commit returns nil.
	Stream(ctx context.Context, localPath, path string) (Stream, error)
}

// Stream uploads a growing local file; see Streamer. Its methods may be called from different
// goroutines.
type Stream interface {
	// Grew reports that the local file's first n bytes are written and will not change. It
	// never blocks; the upload of those bytes runs in the background.
	Grew(n int64)
	// Commit uploads what is left of the file's first size bytes and makes them the object,
	// atomically. Call it only once the bytes are verified.
	Commit(ctx context.Context, size int64) error
	// Cancel abandons the upload and discards what was sent; it is a no-op after Commit.
	Cancel(ctx context.Context) error
}

// Presigner is implemented by drivers whose objects clients can fetch directly, with a URL
// that carries its own short-lived authorization (an S3 presigned GET). Range requests to it
// work as they do on the driver.
type Presigner interface {
	// PresignGet returns a URL that fetches the object at path until expiry has passed.
	PresignGet(ctx context.Context, path string, expiry time.Duration) (string, error)
}
