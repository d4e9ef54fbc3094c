package s3

import (
	"context"
	"fmt"
	"os"

	"github.com/pulpgo/pulpgo/content/storage"
)

// writer is the FileWriter of Driver: a local scratch file that Commit uploads (Move). It is
// not safe for concurrent use.
type writer struct {
	d    *Driver
	path string
	f    *os.File
	size int64
	done bool
}

var _ storage.FileWriter = (*writer)(nil)

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("storage: writer for %s: %w", w.path, os.ErrClosed)
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *writer) Size() int64 { return w.size }

// Commit uploads the scratch file as the object.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("storage: writer for %s: %w", w.path, os.ErrClosed)
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		_ = os.Remove(w.f.Name())
		return fmt.Errorf("storage: commit %s: %w", w.path, err)
	}
	if err := w.d.Move(ctx, w.f.Name(), w.path); err != nil {
		_ = os.Remove(w.f.Name())
		return fmt.Errorf("storage: commit %s: %w", w.path, err)
	}
	return nil
}

// Cancel removes the scratch file; a no-op once the writer is done.
func (w *writer) Cancel(context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("storage: cancel %s: %w", w.path, err)
	}
	return nil
}

func (w *writer) Close() error { return w.Cancel(context.Background()) }
