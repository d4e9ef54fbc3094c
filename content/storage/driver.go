// Package storage keeps immutable blobs and manifests by path: the local filesystem today,
// object storage later. It is a leaf: it knows nothing of registries, models or HTTP.
package storage

import (
	"context"
	"io"
	"time"
)

// Driver stores immutable objects by path; a miss returns *PathNotFoundError.
type Driver interface {
	// Stat describes the object at path.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Reader opens the object at path for reading from offset.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer starts a new object at path; it stays invisible until Commit, and Cancel drops it.
	Writer(ctx context.Context, path string) (FileWriter, error)
	// Delete removes the object at path.
	Delete(ctx context.Context, path string) error
}

// FileInfo describes a stored object.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// FileWriter writes one object; nothing is visible at its path until Commit returns nil.
type FileWriter interface {
	io.Writer
	// Size is the number of bytes written so far.
	Size() int64
	// Commit makes the object visible at its path atomically.
	Commit(ctx context.Context) error
	// Cancel discards what was written.
	Cancel(ctx context.Context) error
	// Close releases resources; an uncommitted writer is cancelled.
	Close() error
}

// PathNotFoundError is returned when no object exists at Path.
type PathNotFoundError struct {
	Path string
}

func (e *PathNotFoundError) Error() string { return "storage: path not found: " + e.Path }

// InvalidPathError is returned for a path that is empty, absolute, or escapes the root.
type InvalidPathError struct {
	Path string
}

func (e *InvalidPathError) Error() string { return "storage: invalid path: " + e.Path }
