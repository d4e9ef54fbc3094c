package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// writesDir is the directory inside the root where writers keep the temporary files of their
// unfinished writes until Commit renames them into place. (Its name on disk predates the fill
// engine's staging directories, which are another thing: see content/fill.)
// Like every name beginning with ".", it is out of reach of the Driver methods.
const writesDir = ".staging"

// Filesystem is a Driver that keeps objects as files under a root directory. Writers write to
// a temporary file in the directory of unfinished writes inside the root (so on the same filesystem) and
// Commit renames it into place, so an object is either absent or complete.
//
// Object paths are slash-separated and relative; empty and absolute paths, paths that leave
// the root after cleaning, and paths with an element beginning with "." are rejected with
// *InvalidPathError. All access goes through an os.Root, so symbolic links cannot lead out of
// the root either.
type Filesystem struct {
	dir  string
	root *os.Root
}

var (
	_ Driver = (*Filesystem)(nil)
	_ Opener = (*Filesystem)(nil)
	_ Mover  = (*Filesystem)(nil)
)

// NewFilesystem returns a Filesystem rooted at dir, creating dir and its staging directory if
// needed. Call SweepWrites once at start to remove the unfinished writes a crash left behind,
// and Close when done.
func NewFilesystem(dir string) (*Filesystem, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: root %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create root: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("storage: open root: %w", err)
	}
	if err := root.MkdirAll(writesDir, 0o700); err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("storage: create staging directory: %w", err)
	}
	return &Filesystem{dir: abs, root: root}, nil
}

// Dir returns the absolute root directory. A directory under it whose name begins with "."
// (for example filepath.Join(fs.Dir(), ".fills")) is invisible to the Driver methods and on
// the same filesystem, which makes Move a rename.
func (s *Filesystem) Dir() string { return s.dir }

// Close releases the root directory handle. Objects already opened stay readable.
func (s *Filesystem) Close() error { return s.root.Close() }

// SweepWrites deletes the temporary files of unfinished writes, which writers interrupted by a
// crash left behind. Call it at start, before any writer exists.
func (s *Filesystem) SweepWrites() error { return s.SweepWritesOlderThan(0) }

// SweepWritesOlderThan deletes unfinished writes last written more than age ago: what a process
// sharing the storage with others may sweep at start without touching their writes in progress.
func (s *Filesystem) SweepWritesOlderThan(age time.Duration) error {
	d, err := s.root.Open(writesDir)
	if err != nil {
		return fmt.Errorf("storage: sweep unfinished writes: %w", err)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return fmt.Errorf("storage: sweep unfinished writes: %w", err)
	}
	var errs []error
	cutoff := time.Now().Add(-age)
	for _, e := range entries {
		if age > 0 {
			if info, err := e.Info(); err != nil || info.ModTime().After(cutoff) {
				continue
			}
		}
		if err := s.root.RemoveAll(path.Join(writesDir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("storage: sweep unfinished writes: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Stat describes the object at p; directories are not objects.
func (s *Filesystem) Stat(ctx context.Context, p string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	name, err := cleanPath(p)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := s.root.Stat(name)
	if err != nil {
		return FileInfo{}, pathError(p, err)
	}
	if !fi.Mode().IsRegular() {
		return FileInfo{}, &PathNotFoundError{Path: p}
	}
	return FileInfo{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Reader opens the object at p positioned at offset. An offset below zero or past the end
// returns *InvalidOffsetError; an offset equal to the size gives an immediate io.EOF. The
// returned value is an *os.File, so it also implements io.Seeker.
func (s *Filesystem) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	f, info, err := s.open(ctx, p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > info.Size {
		_ = f.Close()
		return nil, &InvalidOffsetError{Path: p, Offset: offset}
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("storage: seek %s: %w", p, err)
		}
	}
	return f, nil
}

// Open opens the object at p for reading and seeking, for http.ServeContent.
func (s *Filesystem) Open(ctx context.Context, p string) (io.ReadSeekCloser, FileInfo, error) {
	f, info, err := s.open(ctx, p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	return f, info, nil
}

func (s *Filesystem) open(ctx context.Context, p string) (*os.File, FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, FileInfo{}, err
	}
	name, err := cleanPath(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	f, err := s.root.Open(name)
	if err != nil {
		return nil, FileInfo{}, pathError(p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, FileInfo{}, pathError(p, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, FileInfo{}, &PathNotFoundError{Path: p}
	}
	return f, FileInfo{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Writer starts a new object at p in a temporary file; Commit renames it into place.
func (s *Filesystem) Writer(ctx context.Context, p string) (FileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := cleanPath(p)
	if err != nil {
		return nil, err
	}
	tmp, f, err := s.createTemp()
	if err != nil {
		return nil, fmt.Errorf("storage: writer for %s: %w", p, err)
	}
	return &fsWriter{store: s, path: p, name: name, tmp: tmp, f: f}, nil
}

// Delete removes the object at p.
func (s *Filesystem) Delete(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := cleanPath(p)
	if err != nil {
		return err
	}
	fi, err := s.root.Lstat(name)
	if err != nil {
		return pathError(p, err)
	}
	if fi.IsDir() {
		return &PathNotFoundError{Path: p}
	}
	if err := s.root.Remove(name); err != nil {
		return pathError(p, err)
	}
	return nil
}

// Move makes the local file at localPath the object at p and removes localPath. The file's
// data is synced first; then it is renamed into place, or copied through the staging directory
// when localPath is on another filesystem.
func (s *Filesystem) Move(ctx context.Context, localPath, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := cleanPath(p)
	if err != nil {
		return err
	}
	if err := syncFile(localPath); err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	dir := path.Dir(name)
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	err = os.Rename(localPath, filepath.Join(s.dir, filepath.FromSlash(name)))
	if errors.Is(err, syscall.EXDEV) {
		return s.copyIn(ctx, localPath, p)
	}
	if err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	return s.syncDir(dir)
}

// copyIn is Move across filesystems: a copy through a Writer, then removal of localPath.
func (s *Filesystem) copyIn(ctx context.Context, localPath, p string) error {
	src, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	defer src.Close()
	w, err := s.Writer(ctx, p)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, src); err != nil {
		return fmt.Errorf("storage: move %s to %s: %w", localPath, p, err)
	}
	if err := w.Commit(ctx); err != nil {
		return err
	}
	if err := os.Remove(localPath); err != nil {
		return fmt.Errorf("storage: move %s to %s: remove source: %w", localPath, p, err)
	}
	return nil
}

func (s *Filesystem) createTemp() (string, *os.File, error) {
	for range 10 {
		tmp := path.Join(writesDir, "w-"+rand.Text())
		f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, f, err
	}
	return "", nil, errors.New("storage: could not create a unique temporary file")
}

// place renames the staging file tmp to the object name, creating parent directories, and
// syncs the parent directory so the rename survives a crash.
func (s *Filesystem) place(tmp, name string) error {
	dir := path.Dir(name)
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := s.root.Rename(tmp, name); err != nil {
		return err
	}
	return s.syncDir(dir)
}

func (s *Filesystem) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fsWriter is the FileWriter of Filesystem. It is not safe for concurrent use.
type fsWriter struct {
	store *Filesystem
	path  string // as the caller gave it, for errors
	name  string // cleaned object name
	tmp   string // staging file name
	f     *os.File
	size  int64
	done  bool // committed, cancelled or closed
}

var _ FileWriter = (*fsWriter)(nil)

// Write appends p to the temporary file.
func (w *fsWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, w.closedError()
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *fsWriter) Size() int64 { return w.size }

// Commit syncs the temporary file and renames it into place.
func (w *fsWriter) Commit(ctx context.Context) error {
	if w.done {
		return w.closedError()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.store.place(w.tmp, w.name)
	}
	if err != nil {
		_ = w.store.root.Remove(w.tmp)
		return fmt.Errorf("storage: commit %s: %w", w.path, err)
	}
	return nil
}

// Cancel removes the temporary file; it is a no-op once the writer is done.
func (w *fsWriter) Cancel(context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.f.Close()
	if err := w.store.root.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: cancel %s: %w", w.path, err)
	}
	return nil
}

// Close cancels the writer unless it was committed.
func (w *fsWriter) Close() error { return w.Cancel(context.Background()) }

func (w *fsWriter) closedError() error {
	return fmt.Errorf("storage: writer for %s: %w", w.path, os.ErrClosed)
}

// cleanPath validates an object path and returns its cleaned, slash-separated form.
func cleanPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return "", &InvalidPathError{Path: p}
	}
	name := path.Clean(p)
	if name == "." {
		return "", &InvalidPathError{Path: p}
	}
	for el := range strings.SplitSeq(name, "/") {
		// Catches "..", which is all that remains of an escape after cleaning, and the
		// reserved names such as the staging directory.
		if strings.HasPrefix(el, ".") {
			return "", &InvalidPathError{Path: p}
		}
	}
	return name, nil
}

// pathError maps a file system error on p to *PathNotFoundError when nothing is there.
func pathError(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &PathNotFoundError{Path: p}
	}
	return fmt.Errorf("storage: %s: %w", p, err)
}
