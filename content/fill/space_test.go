package fill

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/test/tmpfs"
)

// unavailable is what models.IsUnavailable looks for in errors of other packages.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable() || errors.Is(err, syscall.ENOSPC)
}

// TestFillRefusesBlobLargerThanFreeSpace fills on a small tmpfs: a blob announced larger than
// the free space fails before its size is published (so no client got headers) with an
// *storage.InsufficientSpaceError, and without reading a byte of the body; on a disk already
// full the fill fails before asking upstream at all. Nothing is staged or stored either way.
func TestFillRefusesBlobLargerThanFreeSpace(t *testing.T) {
	dir := tmpfs.Mount(t, 16)
	drivers(t, func(t *testing.T, move bool) {
		e := newEnvIn(t, dir+"/"+map[bool]string{true: "m", false: "w"}[move], move, WithSpaceMargin(1<<20))
		data, digest := blob(1, 64<<10)
		var calls atomic.Int32
		read := &countingReader{}
		src := func(context.Context, int64) (io.ReadCloser, int64, error) {
			calls.Add(1)
			return read, 32 << 20, nil // announced larger than the tmpfs
		}
		f := e.fills.Start(t.Context(), digest, src, nil)
		_, err := f.Size(t.Context())
		var ise *storage.InsufficientSpaceError
		if !errors.As(err, &ise) || !unavailable(err) {
			t.Fatalf("Size = %v, want an unavailable *storage.InsufficientSpaceError", err)
		}
		waitDone(t, f)
		if read.n.Load() != 0 || !read.closed.Load() {
			t.Errorf("the body was read (%d bytes) or not closed (%v)", read.n.Load(), read.closed.Load())
		}
		e.wantNothingStored(t, digest)

		// A full disk: upstream is not even asked.
		filler := tmpfs.Fill(t, dir, 512<<10)
		calls.Store(0)
		f = e.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
		if _, err := f.Size(t.Context()); !errors.As(err, &ise) {
			t.Fatalf("Size on a full disk = %v, want *storage.InsufficientSpaceError", err)
		}
		waitDone(t, f)
		if calls.Load() != 0 {
			t.Errorf("upstream asked %d times with the disk full, want 0", calls.Load())
		}
		e.wantNothingStored(t, digest)

		// Space back: the same fill succeeds, nothing was left poisoned.
		filler.Remove(t)
		f = e.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
		waitDone(t, f)
		if err := f.Err(); err != nil {
			t.Fatalf("fill after the space came back: %v", err)
		}
		e.wantStored(t, digest, data)
	})
}

// TestFillRunsOutOfSpaceMidway starts a fill with room for its blob and takes the room away
// while it runs: the reader following it gets the write's ENOSPC at once (no hang), the
// staging file is gone, nothing is committed and no fill of the digest is left running; once
// the space is back the next fill of the digest stores it.
func TestFillRunsOutOfSpaceMidway(t *testing.T) {
	dir := tmpfs.Mount(t, 16)
	e := newEnvIn(t, dir+"/store", true, WithSpaceMargin(1<<20), WithResumes(0, 0))
	data, digest := blob(2, 4<<20)
	p := newPipeSource(t, int64(len(data)))
	f := e.fills.Start(t.Context(), digest, p.source, nil)
	res := readAsync(t.Context(), f, 0, -1)
	p.feed(t, data[:1<<20])
	waitWritten(t, f, 1<<20)

	filler := tmpfs.Fill(t, dir, 0)
	// The fill's next write finds no room (io.Pipe hands this over as the fill reads it).
	go func() { _, _ = p.pw.Write(data[1<<20:]) }()
	got := recv(t, res)
	if got.err == nil || !errors.Is(got.err, syscall.ENOSPC) {
		t.Fatalf("reader ended with %v after %d bytes, want ENOSPC", got.err, len(got.data))
	}
	waitDone(t, f)
	if !unavailable(f.Err()) {
		t.Errorf("fill error %v is not unavailable", f.Err())
	}
	if r := e.fills.Running(digest); r != nil {
		t.Errorf("a fill of %s is still running after the failure", digest)
	}
	e.wantNothingStored(t, digest)

	filler.Remove(t)
	var calls atomic.Int32
	f = e.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatalf("fill after the space came back: %v", err)
	}
	e.wantStored(t, digest, data)
}

// countingReader counts what is read from it and whether it was closed.
type countingReader struct {
	n      atomic.Int64
	closed atomic.Bool
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.n.Add(int64(len(p)))
	return len(p), nil
}

func (r *countingReader) Close() error {
	r.closed.Store(true)
	return nil
}

// TestFillCountsOtherFillsRoom: on a 16 MiB tmpfs, a fill of 9 MiB that has written little
// of its blob keeps its room: a second fill of 9 MiB started meanwhile is refused before its
// size is published, instead of both starting and one running out of space after its client
// got headers; once the first has ended the second's room is there.
func TestFillCountsOtherFillsRoom(t *testing.T) {
	dir := tmpfs.Mount(t, 16)
	e := newEnvIn(t, dir+"/m", true, WithSpaceMargin(1<<20))
	first, firstDigest := blob(21, 9<<20)
	second, secondDigest := blob(22, 9<<20)
	pipe := newPipeSource(t, int64(len(first)))
	f1 := e.fills.Start(t.Context(), firstDigest, pipe.source, nil)
	if _, err := f1.Size(t.Context()); err != nil {
		t.Fatal(err)
	}
	pipe.feed(t, first[:1<<20]) // 8 MiB of the first blob still to come

	var calls atomic.Int32
	f2 := e.fills.Start(t.Context(), secondDigest, staticSource(second, int64(len(second)), &calls, nil), nil)
	var ise *storage.InsufficientSpaceError
	if _, err := f2.Size(t.Context()); !errors.As(err, &ise) {
		t.Fatalf("a second 9 MiB fill beside the first: Size = %v, want *storage.InsufficientSpaceError", err)
	}
	waitDone(t, f2)
	if calls.Load() != 1 {
		t.Errorf("the refused fill asked upstream %d times, want 1 (the size comes from its answer)", calls.Load())
	}
	if _, err := e.driver.Stat(t.Context(), mustBlobPath(secondDigest)); err == nil {
		t.Error("the refused blob is stored")
	}

	pipe.feed(t, first[1<<20:])
	pipe.pw.Close()
	waitDone(t, f1)
	if err := f1.Err(); err != nil {
		t.Fatalf("the first fill: %v", err)
	}
	e.wantStored(t, firstDigest, first)
	// Stored, the first blob takes its 9 MiB for good: removed, its room is the second's.
	if err := e.driver.Delete(t.Context(), mustBlobPath(firstDigest)); err != nil {
		t.Fatal(err)
	}
	f2 = e.fills.Start(t.Context(), secondDigest, staticSource(second, int64(len(second)), &calls, nil), nil)
	waitDone(t, f2)
	if err := f2.Err(); err != nil {
		t.Fatalf("the second fill once the first's room is free: %v", err)
	}
	e.wantStored(t, secondDigest, second)
}
