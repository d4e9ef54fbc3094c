// Package storagetest is the conformance suite every storage.Driver must pass.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Run runs the conformance suite against the drivers newDriver returns; it is called once per
// subtest and should return an empty driver whose resources the test's Cleanup releases.
// Optional interfaces (storage.Opener, storage.Mover) are tested when the driver has them.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"WriteCommitStatRead", testWriteCommitStatRead},
		{"ReadAtOffsets", testReadAtOffsets},
		{"LargeObject", testLargeObject},
		{"EmptyObject", testEmptyObject},
		{"UncommittedInvisible", testUncommittedInvisible},
		{"CancelLeavesNothing", testCancelLeavesNothing},
		{"WriterDoneRejectsWrites", testWriterDone},
		{"NotFoundTyped", testNotFoundTyped},
		{"InvalidPathsRejected", testInvalidPaths},
		{"Delete", testDelete},
		{"Overwrite", testOverwrite},
		{"ConcurrentWritersAtomic", testConcurrentWriters},
		{"BlobPath", testBlobPath},
		{"Opener", testOpener},
		{"Mover", testMover},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newDriver(t))
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Put writes data at p through a Writer and commits it, failing t on any error.
func Put(t testing.TB, d storage.Driver, p string, data []byte) {
	t.Helper()
	ctx := t.Context()
	w, err := d.Writer(ctx, p)
	if err != nil {
		t.Fatalf("Writer(%q): %v", p, err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%q): %v", p, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit(%q): %v", p, err)
	}
}

func get(t *testing.T, d storage.Driver, p string, off int64) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), p, off)
	if err != nil {
		t.Fatalf("Reader(%q, %d): %v", p, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q at %d: %v", p, off, err)
	}
	return b
}

func wantNotFound(t *testing.T, what string, err error, p string) {
	t.Helper()
	var nf *storage.PathNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("%s: got error %v (%T), want *storage.PathNotFoundError", what, err, err)
	}
	if nf.Path != p {
		t.Errorf("%s: PathNotFoundError.Path = %q, want %q", what, nf.Path, p)
	}
}

func wantAbsent(t *testing.T, d storage.Driver, p string) {
	t.Helper()
	_, err := d.Stat(t.Context(), p)
	wantNotFound(t, "Stat("+p+")", err, p)
	r, err := d.Reader(t.Context(), p, 0)
	if err == nil {
		r.Close()
	}
	wantNotFound(t, "Reader("+p+")", err, p)
}

func testWriteCommitStatRead(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	data := randomBytes(1, 100_000)
	const p = "a/b/object"
	w, err := d.Writer(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for chunk := range slices.Chunk(data, 7_777) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.Size(); got != int64(len(data)) {
		t.Errorf("Size() = %d, want %d", got, len(data))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Stat(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != int64(len(data)) || fi.Path != p || fi.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want size %d, path %q and a modification time", fi, len(data), p)
	}
	if got := get(t, d, p, 0); !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, differing from the %d written", len(got), len(data))
	}
	// A path that is cleaned to the same object reaches it.
	if got := get(t, d, "a/./x/../b//object", 0); !bytes.Equal(got, data) {
		t.Errorf("read back through an uncleaned path: differing bytes")
	}
}

func testReadAtOffsets(t *testing.T, d storage.Driver) {
	data := randomBytes(2, 10_000)
	const p = "offsets"
	Put(t, d, p, data)
	for _, off := range []int64{0, 1, 4096, 9_999, 10_000} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			if got := get(t, d, p, off); !bytes.Equal(got, data[off:]) {
				t.Errorf("at offset %d: read %d bytes, want %d matching bytes", off, len(got), len(data)-int(off))
			}
		})
	}
	for _, off := range []int64{-1, 10_001} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			r, err := d.Reader(t.Context(), p, off)
			if err == nil {
				r.Close()
			}
			var ioe *storage.InvalidOffsetError
			if !errors.As(err, &ioe) {
				t.Fatalf("Reader at %d: got %v, want *storage.InvalidOffsetError", off, err)
			}
		})
	}
}

func testLargeObject(t *testing.T, d storage.Driver) {
	data := randomBytes(3, 5<<20+3)
	Put(t, d, "large/object", data)
	if got := get(t, d, "large/object", 3<<20+1); !bytes.Equal(got, data[3<<20+1:]) {
		t.Error("large object read at an offset differs")
	}
}

func testEmptyObject(t *testing.T, d storage.Driver) {
	Put(t, d, "empty", nil)
	fi, err := d.Stat(t.Context(), "empty")
	if err != nil || fi.Size != 0 {
		t.Fatalf("Stat = %+v, %v; want size 0", fi, err)
	}
	if got := get(t, d, "empty", 0); len(got) != 0 {
		t.Errorf("read %d bytes from an empty object", len(got))
	}
}

func testUncommittedInvisible(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "pending")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("not yet")); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, d, "pending")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "pending", 0); string(got) != "not yet" {
		t.Errorf("after Commit read %q", got)
	}
}

func testCancelLeavesNothing(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	for _, how := range []string{"Cancel", "Close"} {
		t.Run(how, func(t *testing.T) {
			p := "dropped/" + how
			w, err := d.Writer(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(randomBytes(4, 1000)); err != nil {
				t.Fatal(err)
			}
			if how == "Cancel" {
				if err := w.Cancel(ctx); err != nil {
					t.Fatalf("Cancel: %v", err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wantAbsent(t, d, p)
		})
	}
}

func testWriterDone(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "done")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got := get(t, d, "done", 0); string(got) != "x" {
		t.Errorf("object = %q, want %q", got, "x")
	}
}

func testNotFoundTyped(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	Put(t, d, "dir/file", []byte("x"))
	for _, p := range []string{"missing", "dir/missing", "dir", "dir/file/below"} {
		t.Run(p, func(t *testing.T) {
			wantAbsent(t, d, p)
			wantNotFound(t, "Delete", d.Delete(ctx, p), p)
		})
	}
}

func testInvalidPaths(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	for _, p := range []string{"", "/", "/etc/passwd", ".", "./", "..", "../x", "a/../../x", "a/b/../../..", "x\x00y"} {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				var ip *storage.InvalidPathError
				if !errors.As(err, &ip) {
					t.Errorf("%s(%q): got %v, want *storage.InvalidPathError", what, p, err)
				}
			}
			_, err := d.Stat(ctx, p)
			check("Stat", err)
			r, err := d.Reader(ctx, p, 0)
			if err == nil {
				r.Close()
			}
			check("Reader", err)
			w, err := d.Writer(ctx, p)
			if err == nil {
				w.Close()
			}
			check("Writer", err)
			check("Delete", d.Delete(ctx, p))
		})
	}
}

func testDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	Put(t, d, "del/one", []byte("1"))
	Put(t, d, "del/two", []byte("2"))
	if err := d.Delete(ctx, "del/one"); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, d, "del/one")
	wantNotFound(t, "second Delete", d.Delete(ctx, "del/one"), "del/one")
	if got := get(t, d, "del/two", 0); string(got) != "2" {
		t.Errorf("sibling = %q after Delete", got)
	}
	Put(t, d, "del/one", []byte("again"))
	if got := get(t, d, "del/one", 0); string(got) != "again" {
		t.Errorf("rewritten object = %q", got)
	}
}

func testOverwrite(t *testing.T, d storage.Driver) {
	Put(t, d, "same", []byte("first"))
	Put(t, d, "same", []byte("second!"))
	if got := get(t, d, "same", 0); string(got) != "second!" {
		t.Errorf("object = %q, want the last committed", got)
	}
}

func testConcurrentWriters(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	const n = 8
	contents := make([][]byte, n)
	for i := range contents {
		contents[i] = randomBytes(uint64(10+i), 200_000)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w, err := d.Writer(ctx, "contended")
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for chunk := range slices.Chunk(contents[i], 10_000) {
				if _, err := w.Write(chunk); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Commit(ctx)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, d, "contended", 0)
	for _, c := range contents {
		if bytes.Equal(got, c) {
			return
		}
	}
	t.Errorf("object (%d bytes) is not any one writer's content", len(got))
}

func testBlobPath(t *testing.T, d storage.Driver) {
	p, err := storage.BlobPath("sha256:" + fmt.Sprintf("%064x", 0xabcdef))
	if err != nil {
		t.Fatal(err)
	}
	Put(t, d, p, []byte("blob"))
	if got := get(t, d, p, 0); string(got) != "blob" {
		t.Errorf("blob = %q", got)
	}
}

func testOpener(t *testing.T, d storage.Driver) {
	o, ok := d.(storage.Opener)
	if !ok {
		t.Skip("driver does not implement storage.Opener")
	}
	ctx := t.Context()
	data := randomBytes(5, 50_000)
	Put(t, d, "seekable", data)
	rs, fi, err := o.Open(ctx, "seekable")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if fi.Size != int64(len(data)) {
		t.Errorf("Open FileInfo.Size = %d, want %d", fi.Size, len(data))
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil || end != int64(len(data)) {
		t.Fatalf("Seek(0, SeekEnd) = %d, %v; want %d", end, err, len(data))
	}
	if _, err := rs.Seek(30_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(rs, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[30_000:30_100]) {
		t.Error("bytes read after Seek differ")
	}
	_, _, err = o.Open(ctx, "missing")
	wantNotFound(t, "Open(missing)", err, "missing")
	_, _, err = o.Open(ctx, "../escape")
	var ip *storage.InvalidPathError
	if !errors.As(err, &ip) {
		t.Errorf("Open(../escape): got %v, want *storage.InvalidPathError", err)
	}
}

func testMover(t *testing.T, d storage.Driver) {
	m, ok := d.(storage.Mover)
	if !ok {
		t.Skip("driver does not implement storage.Mover")
	}
	ctx := t.Context()
	data := randomBytes(6, 70_000)
	local := filepath.Join(t.TempDir(), "local")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var ip *storage.InvalidPathError
	if err := m.Move(ctx, local, "../escape"); !errors.As(err, &ip) {
		t.Errorf("Move to ../escape: got %v, want *storage.InvalidPathError", err)
	}
	if _, err := os.Stat(local); err != nil {
		t.Fatalf("rejected Move touched the local file: %v", err)
	}
	if err := m.Move(ctx, local, "moved/here"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "moved/here", 0); !bytes.Equal(got, data) {
		t.Error("moved object differs")
	}
	if _, err := os.Stat(local); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("local file still there after Move (stat: %v)", err)
	}
	if err := m.Move(ctx, local, "moved/again"); err == nil {
		t.Error("Move of a missing local file succeeded")
	}
	wantAbsent(t, d, "moved/again")
}
