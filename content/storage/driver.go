// Package storage keeps immutable blobs and manifests by path: the local filesystem today,
// object storage later. It is a leaf: it knows nothing of registries, models or HTTP.
package storage

import (
	"context"
	"fmt"
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

// Opener is implemented by drivers that can open an object for random access, which is what
// http.ServeContent needs to answer Range requests. The FileInfo describes the opened object.
type Opener interface {
	// Open opens the object at path for reading and seeking.
	Open(ctx context.Context, path string) (io.ReadSeekCloser, FileInfo, error)
}

// Mover is implemented by drivers that can take over a local file without copying it.
type Mover interface {
	// Move makes the local file at localPath the object at path, atomically, and removes
	// localPath. It is a rename when localPath is on the same filesystem as the store.
	Move(ctx context.Context, localPath, path string) error
}

// InvalidOffsetError is returned by Reader for an offset that is negative or past the end of
// the object at Path.
type InvalidOffsetError struct {
	Path   string
	Offset int64
}

// Error names the path and the offset.
func (e *InvalidOffsetError) Error() string {
	return fmt.Sprintf("storage: invalid offset %d for path %s", e.Offset, e.Path)
}
