package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

// TestFilesystemUsage: Usage sums the objects under the blob tree (empty storage: 0), and
// not unfinished writes, nor files kept beside the tree (fill staging, uploads).
func TestFilesystemUsage(t *testing.T) {
	ctx := context.Background()
	fs := newFilesystem(t)
	if n, err := fs.Usage(ctx); err != nil || n != 0 {
		t.Fatalf("empty storage: %d, %v; want 0", n, err)
	}
	put := func(digest string, size int) {
		t.Helper()
		p, err := storage.BlobPath(digest)
		if err != nil {
			t.Fatal(err)
		}
		w, err := fs.Writer(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put("sha256:"+strings.Repeat("a", 64), 1000)
	put("sha256:"+strings.Repeat("b", 64), 24)
	put("sha512:"+strings.Repeat("c", 128), 7)
	// An unfinished write and files of other parts of the process.
	w, err := fs.Writer(ctx, "blobs/sha256/dd/"+strings.Repeat("d", 64))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{".fills", ".uploads"} {
		if err := os.MkdirAll(filepath.Join(fs.Dir(), dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fs.Dir(), dir, "x"), make([]byte, 3000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := fs.Usage(ctx); err != nil || n != 1031 {
		t.Fatalf("usage %d, %v; want 1031", n, err)
	}
	var _ storage.Usager = fs
}
