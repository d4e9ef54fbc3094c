package fill

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

func newTransient(t *testing.T) (*Transient, *Staging) {
	t.Helper()
	staging, err := OpenStaging(filepath.Join(t.TempDir(), ".fills"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Close() })
	tr, err := NewTransient(staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, staging
}

// released returns a channel that receives each digest whose scratch copy is released.
func released(tr *Transient) <-chan string {
	ch := make(chan string, 16)
	tr.deleted = func(d string) { ch <- d }
	return ch
}

// wantNoLeftovers checks that nothing is left below the staging directory: no staging file,
// no scratch copy.
func wantNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Fatalf("left behind: %v", out)
	}
}

// TestTransientServesOnceAndKeepsNothing checks a streamed blob: concurrent callers share one
// fetch, a reader made after the fill ended still reads it while its caller's context lives,
// nothing stays once the callers are gone, and the next caller fetches again.
func TestTransientServesOnceAndKeepsNothing(t *testing.T) {
	tr, staging := newTransient(t)
	gone := released(tr)
	data, digest := blob(7, 300<<10)
	var calls atomic.Int32
	gate := make(chan struct{})
	src := staticSource(data, int64(len(data)), &calls, gate)

	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	f1, started1 := tr.Claim(ctx1, digest, "a", src)
	f2, started2 := tr.Claim(ctx2, digest, "b", src)
	if !started1 || started2 || f1 != f2 {
		t.Fatalf("started %v, %v, same fill %v: want one fill started, joined by the second caller", started1, started2, f1 == f2)
	}
	r1 := readAsync(ctx1, f1, 0, -1)
	r2 := readAsync(ctx2, f2, 1000, -1)
	close(gate)
	if res := recv(t, r1); res.err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("reader 1: %d bytes, %v", len(res.data), res.err)
	}
	if res := recv(t, r2); res.err != nil || !bytes.Equal(res.data, data[1000:]) {
		t.Fatalf("reader 2: %d bytes, %v", len(res.data), res.err)
	}
	waitDone(t, f1)
	// The fill has ended; a reader of a caller still there reads the scratch copy.
	if res := recv(t, readAsync(ctx2, f2, 5, -1)); res.err != nil || !bytes.Equal(res.data, data[5:]) {
		t.Fatalf("reader after the fill: %d bytes, %v", len(res.data), res.err)
	}
	cancel1()
	cancel2()
	if d := recv(t, gone); d != digest {
		t.Fatalf("released %s, want %s", d, digest)
	}
	wantNoLeftovers(t, staging.Dir())
	if n := calls.Load(); n != 1 {
		t.Fatalf("upstream calls: %d, want 1", n)
	}

	ctx3, cancel3 := context.WithCancel(t.Context())
	defer cancel3()
	f3, started3 := tr.Claim(ctx3, digest, "a", staticSource(data, int64(len(data)), &calls, nil))
	if !started3 {
		t.Fatal("a blob that is not kept was not fetched again")
	}
	if res := recv(t, readAsync(ctx3, f3, 0, -1)); res.err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("second fetch: %d bytes, %v", len(res.data), res.err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("upstream calls: %d, want 2", n)
	}
	cancel3()
	waitDone(t, f3)
	if d := recv(t, gone); d != digest {
		t.Fatalf("released %s, want %s", d, digest)
	}
	wantNoLeftovers(t, staging.Dir())
}

// TestTransientCorruptSourceFails checks that wrong bytes reach no reader whole and leave
// nothing behind.
func TestTransientCorruptSourceFails(t *testing.T) {
	tr, staging := newTransient(t)
	gone := released(tr)
	data, digest := blob(8, 100<<10)
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 0xff
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	f, _ := tr.Claim(ctx, digest, "a", staticSource(bad, int64(len(bad)), &calls, nil))
	res := recv(t, readAsync(ctx, f, 0, -1))
	var dm *DigestMismatchError
	if !errors.As(res.err, &dm) {
		t.Fatalf("reader: %d bytes, err %v; want a DigestMismatchError", len(res.data), res.err)
	}
	if len(res.data) >= len(data) {
		t.Fatalf("reader got %d bytes of a corrupt %d-byte blob", len(res.data), len(data))
	}
	waitDone(t, f)
	cancel()
	if d := recv(t, gone); d != digest {
		t.Fatalf("released %s, want %s", d, digest)
	}
	wantNoLeftovers(t, staging.Dir())
	p, _ := storage.BlobPath(digest)
	if _, err := tr.scratch.Stat(t.Context(), p); err == nil {
		t.Fatal("a corrupt blob was kept")
	}
}
