package storage

import "fmt"

// UnavailableError is a failure of the storage itself rather than of the request: an object
// store that is down, slow, full or answering 5xx, a disk without room. The same request may
// succeed later; callers answer it 503 (its Unavailable method is what models.IsUnavailable
// looks for, so this package needs no import of models).
type UnavailableError struct {
	Op   string // what was being done: "stat", "read", "upload", ...
	Path string // the object, or the directory, it was done to
	Err  error
}

// Error names the operation, the path and the cause.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("storage unavailable: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable reports true: the storage, not the request, failed.
func (e *UnavailableError) Unavailable() bool { return true }

// InsufficientSpaceError says that a directory's filesystem has less room than a write needs:
// what a fill answers before it fetches anything, rather than failing midway.
type InsufficientSpaceError struct {
	Dir        string
	Free, Need int64
}

// Error names the directory, its free bytes and the bytes needed.
func (e *InsufficientSpaceError) Error() string {
	return fmt.Sprintf("storage: %s has %d bytes free, %d needed", e.Dir, e.Free, e.Need)
}

// Unavailable reports true: a full disk is the storage's failure, and space may come back.
func (e *InsufficientSpaceError) Unavailable() bool { return true }
