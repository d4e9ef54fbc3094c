package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/storagetest"
)

func newFilesystem(t *testing.T) *storage.Filesystem {
	t.Helper()
	fs, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

func TestFilesystem(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newFilesystem(t) })
}

func stagingEntries(t *testing.T, fs *storage.Filesystem) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(fs.Dir(), ".staging"))
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestFilesystemStagingIsCleanedUp(t *testing.T) {
	ctx := t.Context()
	fs := newFilesystem(t)
	committed, err := fs.Writer(ctx, "committed")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := fs.Writer(ctx, "cancelled")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(stagingEntries(t, fs)); n != 2 {
		t.Fatalf("%d staging files for 2 open writers", n)
	}
	if err := committed.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cancelled.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(stagingEntries(t, fs)); n != 0 {
		t.Errorf("%d staging files left after Commit and Cancel", n)
	}
}

func TestFilesystemSweepWrites(t *testing.T) {
	dir := t.TempDir()
	fs, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := fs.Writer(context.Background(), "crashed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the writer is never closed and a new process opens the same root.
	fs2, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs2.Close()
	if err := fs2.SweepWrites(); err != nil {
		t.Fatal(err)
	}
	if n := len(stagingEntries(t, fs2)); n != 0 {
		t.Errorf("%d staging files left after SweepWrites", n)
	}
	if err := w.Commit(context.Background()); err == nil {
		t.Error("Commit of a swept writer succeeded")
	}
	_ = fs.Close()
	if _, err := fs2.Stat(context.Background(), "crashed"); err == nil {
		t.Error("swept writer's object exists")
	}
}

func TestFilesystemReservedAndSymlinks(t *testing.T) {
	ctx := t.Context()
	fs := newFilesystem(t)
	for _, p := range []string{".staging/x", "a/.hidden", ".fills"} {
		_, err := fs.Stat(ctx, p)
		var ip *storage.InvalidPathError
		if !errors.As(err, &ip) {
			t.Errorf("Stat(%q) = %v, want *storage.InvalidPathError for a reserved name", p, err)
		}
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(fs.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(ctx, "link/secret"); err == nil {
		t.Error("Stat followed a symbolic link out of the root")
	}
	if r, err := fs.Reader(ctx, "link/secret", 0); err == nil {
		r.Close()
		t.Error("Reader followed a symbolic link out of the root")
	}
}

func TestFilesystemReaderIsSeekable(t *testing.T) {
	ctx := t.Context()
	fs := newFilesystem(t)
	w, err := fs.Writer(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := fs.Reader(ctx, "obj", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, ok := r.(interface {
		Seek(int64, int) (int64, error)
	})
	if !ok {
		t.Fatalf("Reader returned %T, not seekable", r)
	}
	if pos, err := s.Seek(0, 1); err != nil || pos != 4 {
		t.Errorf("position = %d, %v; want 4", pos, err)
	}
}
