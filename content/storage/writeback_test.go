package storage_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

// TestWritebackWritesThrough: a Writeback appends exactly what it is given, from the offset
// it starts at, across several writeback steps and uneven writes.
func TestWritebackWritesThrough(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "upload"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := []byte("already here")
	if _, err := f.Write(head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 20<<20+12345)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	w := storage.NewWriteback(f, int64(len(head)))
	for rest, step := body, 1; len(rest) > 0; step = step*3 + 1 {
		n := min(step, len(rest))
		if m, err := w.Write(rest[:n]); m != n || err != nil {
			t.Fatalf("write %d: %d, %v", n, m, err)
		}
		rest = rest[n:]
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(head, body...)) {
		t.Fatalf("file holds %d bytes, not the %d written", len(got), len(head)+len(body))
	}
}
