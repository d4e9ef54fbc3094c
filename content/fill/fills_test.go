package fill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// testDeadline bounds every wait in these tests; nothing waits for it to pass.
const testDeadline = 20 * time.Second

// noMover hides the optional interfaces of a driver, so fills commit through a Writer.
type noMover struct{ storage.Driver }

type testEnv struct {
	fills   *Fills
	driver  storage.Driver
	staging string
}

// newEnv returns Fills on a fresh filesystem driver, with the Move fast path or without.
func newEnv(t *testing.T, move bool, opts ...Option) *testEnv {
	t.Helper()
	return newEnvIn(t, t.TempDir(), move, opts...)
}

// newEnvIn is newEnv with the driver's root (and the staging directory below it) in dir.
func newEnvIn(t *testing.T, dir string, move bool, opts ...Option) *testEnv {
	t.Helper()
	fsd, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsd.Close() })
	var driver storage.Driver = fsd
	if !move {
		driver = noMover{fsd}
	}
	staging, err := OpenStaging(filepath.Join(fsd.Dir(), ".fills"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Close() })
	fills := New(driver, staging, nil, opts...)
	t.Cleanup(fills.Wait) // runs before the staging directory and the driver are closed
	return &testEnv{fills: fills, driver: driver, staging: staging.Dir()}
}

// put stores data as blob digest in e's driver, as a fill of another process would have.
func (e *testEnv) put(t *testing.T, digest string, data []byte) {
	t.Helper()
	w, err := e.driver.Writer(t.Context(), mustBlobPath(digest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// drivers runs fn with the Move fast path and with the Writer path.
func drivers(t *testing.T, fn func(t *testing.T, move bool)) {
	for _, move := range []bool{true, false} {
		t.Run(map[bool]string{true: "Mover", false: "Writer"}[move], func(t *testing.T) { fn(t, move) })
	}
}

func blob(seed uint64, n int) ([]byte, string) {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:])
}

// staticSource serves data once gate is closed (a nil gate does not wait), counting calls.
func staticSource(data []byte, size int64, calls *atomic.Int32, gate <-chan struct{}) Source {
	return func(ctx context.Context, _ int64) (io.ReadCloser, int64, error) {
		calls.Add(1)
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		return io.NopCloser(bytes.NewReader(data)), size, nil
	}
}

// pipeSource is an upstream the test feeds step by step.
type pipeSource struct {
	pr    *io.PipeReader
	pw    *io.PipeWriter
	size  int64
	calls atomic.Int32
}

func newPipeSource(t *testing.T, size int64) *pipeSource {
	pr, pw := io.Pipe()
	// Unblocks a fill still reading when the test ends, before Fills.Wait runs.
	t.Cleanup(func() { pw.CloseWithError(errors.New("test ended")) })
	return &pipeSource{pr: pr, pw: pw, size: size}
}

// source hands out the pipe; a resume (offset > 0) gets the same pipe, which goes on with the
// bytes the test feeds next, or repeats the error it was closed with.
func (p *pipeSource) source(_ context.Context, off int64) (io.ReadCloser, int64, error) {
	p.calls.Add(1)
	if p.size < 0 {
		return p.pr, -1, nil
	}
	return p.pr, p.size - off, nil
}

// feed returns once the fill has read b (io.Pipe hands bytes over synchronously).
func (p *pipeSource) feed(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.pw.Write(b); err != nil {
		t.Fatalf("feed: %v", err)
	}
}

type readResult struct {
	data []byte
	err  error
}

// readAsync reads n bytes (all, if n < 0) from a new reader at off, in a goroutine.
func readAsync(ctx context.Context, f *Fill, off int64, n int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		r := f.NewReader(ctx, off)
		defer r.Close()
		var res readResult
		if n < 0 {
			res.data, res.err = io.ReadAll(r)
		} else {
			res.data = make([]byte, n)
			_, res.err = io.ReadFull(r, res.data)
		}
		ch <- res
	}()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testDeadline):
		t.Fatal("timed out waiting for a result")
		panic("unreachable")
	}
}

func waitDone(t *testing.T, f *Fill) {
	t.Helper()
	select {
	case <-f.Done():
	case <-time.After(testDeadline):
		t.Fatal("timed out waiting for the fill to end")
	}
}

// waitState waits until cond, evaluated with f.mu held, is true.
func waitState(t *testing.T, f *Fill, cond func() bool) {
	t.Helper()
	timeout := time.After(testDeadline)
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatal("timed out waiting for the fill's state")
		}
	}
}

func waitWritten(t *testing.T, f *Fill, n int64) {
	t.Helper()
	waitState(t, f, func() bool { return f.written >= n || f.err != nil })
}

func (e *testEnv) wantStored(t *testing.T, digest string, data []byte) {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.driver.Reader(t.Context(), p, 0)
	if err != nil {
		t.Fatalf("blob not stored: %v", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored blob: %d bytes, %v; want the %d bytes fetched", len(got), err, len(data))
	}
	e.wantStagingEmpty(t)
}

func (e *testEnv) wantNothingStored(t *testing.T, digest string) {
	t.Helper()
	p, err := storage.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	var nf *storage.PathNotFoundError
	if _, err := e.driver.Stat(t.Context(), p); !errors.As(err, &nf) {
		t.Errorf("Stat(blob) = %v, want *storage.PathNotFoundError", err)
	}
	e.wantStagingEmpty(t)
}

func (e *testEnv) wantStagingEmpty(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(e.staging)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("staging directory holds %d files, want none", len(entries))
	}
}

func TestFillConcurrentStartsFetchOnce(t *testing.T) {
	drivers(t, func(t *testing.T, move bool) {
		env := newEnv(t, move)
		data, digest := blob(1, 3<<20+17)
		var calls atomic.Int32
		gate := make(chan struct{})
		src := staticSource(data, int64(len(data)), &calls, gate)

		const clients = 20
		var commits [clients]atomic.Int32
		var started, finished sync.WaitGroup
		started.Add(clients)
		fills := make([]*Fill, clients)
		results := make([]readResult, clients)
		for i := range clients {
			finished.Go(func() {
				f := env.fills.Start(t.Context(), digest, src, func(_ context.Context, size int64) error {
					if size != int64(len(data)) {
						return fmt.Errorf("onCommit size %d", size)
					}
					commits[i].Add(1)
					return nil
				})
				fills[i] = f
				started.Done()
				r := f.NewReader(t.Context(), 0)
				defer r.Close()
				results[i].data, results[i].err = io.ReadAll(r)
			})
		}
		started.Wait() // every client has started or joined the fill before upstream answers
		close(gate)
		finished.Wait()

		if n := calls.Load(); n != 1 {
			t.Errorf("source called %d times, want 1", n)
		}
		for i := range clients {
			if fills[i] != fills[0] {
				t.Errorf("client %d got another Fill", i)
			}
			if results[i].err != nil || !bytes.Equal(results[i].data, data) {
				t.Errorf("client %d read %d bytes, %v; want the blob", i, len(results[i].data), results[i].err)
			}
		}
		waitDone(t, fills[0])
		if err := fills[0].Err(); err != nil {
			t.Fatal(err)
		}
		for i := range clients {
			if n := commits[i].Load(); n != 1 {
				t.Errorf("client %d's onCommit called %d times, want 1", i, n)
			}
		}
		env.wantStored(t, digest, data)
	})
}

func TestFillSurvivesCancelledClients(t *testing.T) {
	drivers(t, func(t *testing.T, move bool) {
		env := newEnv(t, move)
		data, digest := blob(2, 1<<20)
		src := newPipeSource(t, int64(len(data)))
		startCtx, cancelStart := context.WithCancel(t.Context())
		var committed atomic.Int64
		f := env.fills.Start(startCtx, digest, src.source, func(_ context.Context, size int64) error {
			committed.Store(size)
			return nil
		})
		cancelStart() // the client that started the fill goes away at once

		readCtx, cancelRead := context.WithCancel(t.Context())
		r := f.NewReader(readCtx, 0)
		defer r.Close()
		src.feed(t, data[:200_000])
		head := make([]byte, 100_000)
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, data[:100_000]) {
			t.Fatalf("first bytes: %v", err)
		}

		// A reader waiting for bytes not written yet is released by its context.
		waitCtx, cancelWait := context.WithCancel(t.Context())
		waiting := readAsync(waitCtx, f, 500_000, 10)
		cancelWait()
		if res := recv(t, waiting); !errors.Is(res.err, context.Canceled) {
			t.Errorf("waiting reader: %v, want context.Canceled", res.err)
		}

		cancelRead() // the reading client goes away mid-stream
		if _, err := r.Read(head); !errors.Is(err, context.Canceled) {
			t.Errorf("Read after cancel: %v, want context.Canceled", err)
		}

		src.feed(t, data[200_000:])
		src.pw.Close()
		waitDone(t, f)
		if err := f.Err(); err != nil {
			t.Fatalf("fill failed: %v", err)
		}
		if got := committed.Load(); got != int64(len(data)) {
			t.Errorf("onCommit size = %d, want %d", got, len(data))
		}
		env.wantStored(t, digest, data)
	})
}

func TestFillCorruptSourceFailsEveryReader(t *testing.T) {
	data, digest := blob(3, 300_000)
	corrupt := bytes.Clone(data)
	corrupt[150_000] ^= 0xff
	upstreamErr := errors.New("connection reset")
	tests := []struct {
		name   string
		body   []byte
		size   int64
		endErr error // the pipe ends with this error instead of EOF
		check  func(error) bool
	}{
		{"digest mismatch", corrupt, int64(len(corrupt)), nil, isType[*DigestMismatchError]},
		{"digest mismatch, size unknown", corrupt, -1, nil, isType[*DigestMismatchError]},
		{"shorter than announced", data[:len(data)-1], int64(len(data)), nil, isType[*SizeMismatchError]},
		{"longer than announced", append(bytes.Clone(data), 'x'), int64(len(data)), nil, isType[*SizeMismatchError]},
		{"announced size wrong", data, int64(len(data)) - 1, nil, isType[*SizeMismatchError]},
		{"upstream error mid-stream", data[:100_000], int64(len(data)), upstreamErr, func(err error) bool { return errors.Is(err, upstreamErr) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drivers(t, func(t *testing.T, move bool) {
				// Without resumes a broken body fails the fill (resume_test.go covers resumes).
				env := newEnv(t, move, WithResumes(0, 0))
				src := newPipeSource(t, tt.size)
				var commits atomic.Int32
				f := env.fills.Start(t.Context(), digest, src.source, func(context.Context, int64) error {
					commits.Add(1)
					return nil
				})
				early := []<-chan readResult{
					readAsync(t.Context(), f, 0, -1),
					readAsync(t.Context(), f, 123_456, -1),
					readAsync(t.Context(), f, int64(len(data))-1, -1),
				}
				src.feed(t, tt.body[:100_000])
				mid := readAsync(t.Context(), f, 0, -1)
				// The fill may stop reading early (too many bytes): then the feed fails, as
				// an upstream connection would.
				_, _ = src.pw.Write(tt.body[100_000:])
				if tt.endErr != nil {
					src.pw.CloseWithError(tt.endErr)
				} else {
					src.pw.Close()
				}
				waitDone(t, f)
				late := readAsync(t.Context(), f, 0, -1)
				for i, ch := range append(early, mid, late) {
					res := recv(t, ch)
					if res.err == nil {
						t.Errorf("reader %d ended cleanly after %d bytes; want an error", i, len(res.data))
					} else if !tt.check(res.err) {
						t.Errorf("reader %d: %v (%T)", i, res.err, res.err)
					}
				}
				if !tt.check(f.Err()) {
					t.Errorf("Err() = %v", f.Err())
				}
				if n := commits.Load(); n != 0 {
					t.Errorf("onCommit called %d times after a failed fill", n)
				}
				env.wantNothingStored(t, digest)
			})
		})
	}
}

func isType[E error](err error) bool {
	var target E
	return errors.As(err, &target)
}

func TestFillRangeReaderUnblocksAsSoonAsItsBytesExist(t *testing.T) {
	const mib = 1 << 20
	env := newEnv(t, true)
	data, digest := blob(4, 5*mib)
	src := newPipeSource(t, int64(len(data)))
	f := env.fills.Start(t.Context(), digest, src.source, nil)

	const off, n = 3*mib + 5, 1000
	ranged := readAsync(t.Context(), f, off, n)
	for i := range 3 {
		src.feed(t, data[i*mib:(i+1)*mib])
	}
	waitWritten(t, f, 3*mib)
	select {
	case res := <-ranged:
		t.Fatalf("range reader returned before its bytes were written: %d bytes, %v", len(res.data), res.err)
	default:
	}
	src.feed(t, data[3*mib:4*mib]) // now bytes off..off+n exist; the rest does not
	res := recv(t, ranged)
	if res.err != nil || !bytes.Equal(res.data, data[off:off+n]) {
		t.Fatalf("range read: %v", res.err)
	}
	select {
	case <-f.Done():
		t.Fatal("the fill ended before the range reader was answered: nothing was shown")
	default:
	}
	src.feed(t, data[4*mib:])
	src.pw.Close()
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	env.wantStored(t, digest, data)
}

func TestFillRetriesAfterFailure(t *testing.T) {
	env := newEnv(t, true)
	data, digest := blob(5, 10_000)
	var calls atomic.Int32
	upstreamErr := errors.New("upstream is down")
	failing := func(context.Context, int64) (io.ReadCloser, int64, error) {
		calls.Add(1)
		return nil, 0, upstreamErr
	}
	first := env.fills.Start(t.Context(), digest, failing, nil)
	res := recv(t, readAsync(t.Context(), first, 0, -1))
	if !errors.Is(res.err, upstreamErr) {
		t.Fatalf("reader of the failed fill: %v, want %v", res.err, upstreamErr)
	}
	waitDone(t, first)
	if !errors.Is(first.Err(), upstreamErr) {
		t.Fatalf("Err() = %v", first.Err())
	}
	if _, err := first.Size(t.Context()); !errors.Is(err, upstreamErr) {
		t.Errorf("Size of the failed fill: %v", err)
	}

	second := env.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
	if second == first {
		t.Fatal("Start after a failure returned the failed fill")
	}
	res = recv(t, readAsync(t.Context(), second, 0, -1))
	if res.err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("second fill: %v", res.err)
	}
	waitDone(t, second)
	if n := calls.Load(); n != 2 {
		t.Errorf("source called %d times, want 2", n)
	}
	env.wantStored(t, digest, data)
}

func TestFillSlowReaderDoesNotBlockFastReader(t *testing.T) {
	drivers(t, func(t *testing.T, move bool) {
		env := newEnv(t, move)
		data, digest := blob(6, 2<<20)
		src := newPipeSource(t, int64(len(data)))
		f := env.fills.Start(t.Context(), digest, src.source, nil)

		slow := f.NewReader(t.Context(), 0)
		defer slow.Close()
		fast := readAsync(t.Context(), f, 0, -1)
		src.feed(t, data[:1000])
		one := make([]byte, 1)
		if _, err := io.ReadFull(slow, one); err != nil || one[0] != data[0] {
			t.Fatalf("slow reader's first byte: %v", err)
		}
		// The slow reader now stops reading while the rest arrives.
		for chunk := range sliceChunks(data[1000:], 100_000) {
			src.feed(t, chunk)
		}
		src.pw.Close()
		res := recv(t, fast)
		if res.err != nil || !bytes.Equal(res.data, data) {
			t.Fatalf("fast reader: %d bytes, %v", len(res.data), res.err)
		}
		waitDone(t, f) // committed while the slow reader holds the staging file open
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
		env.wantStored(t, digest, data)

		rest, err := io.ReadAll(slow)
		if err != nil || !bytes.Equal(rest, data[1:]) {
			t.Fatalf("slow reader after the commit: %d bytes, %v", len(rest), err)
		}
		// A reader that starts after the commit reads from storage.
		res = recv(t, readAsync(t.Context(), f, 12_345, -1))
		if res.err != nil || !bytes.Equal(res.data, data[12_345:]) {
			t.Fatalf("reader after the commit: %v", res.err)
		}
		res = recv(t, readAsync(t.Context(), f, int64(len(data)), -1))
		if res.err != nil || len(res.data) != 0 {
			t.Fatalf("reader at the end after the commit: %d bytes, %v", len(res.data), res.err)
		}
	})
}

func sliceChunks(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			c := b[:min(n, len(b))]
			b = b[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

func TestFillSize(t *testing.T) {
	data, digest := blob(7, 100_000)
	t.Run("announced", func(t *testing.T) {
		env := newEnv(t, true)
		src := newPipeSource(t, int64(len(data)))
		f := env.fills.Start(t.Context(), digest, src.source, nil)
		size, err := f.Size(t.Context()) // no byte has been fed
		if err != nil || size != int64(len(data)) {
			t.Fatalf("Size = %d, %v; want %d", size, err, len(data))
		}
		src.feed(t, data)
		src.pw.Close()
		waitDone(t, f)
	})
	t.Run("unknown until the end", func(t *testing.T) {
		env := newEnv(t, true)
		src := newPipeSource(t, -1)
		f := env.fills.Start(t.Context(), digest, src.source, nil)
		sizes := make(chan int64, 1)
		go func() {
			size, _ := f.Size(t.Context())
			sizes <- size
		}()
		src.feed(t, data[:50_000])
		waitWritten(t, f, 50_000)
		select {
		case size := <-sizes:
			t.Fatalf("Size returned %d before the end of an unannounced blob", size)
		default:
		}
		src.feed(t, data[50_000:])
		src.pw.Close()
		if size := recv(t, sizes); size != int64(len(data)) {
			t.Fatalf("Size = %d, want %d", size, len(data))
		}
		waitDone(t, f)
		env.wantStored(t, digest, data)
	})
	t.Run("context", func(t *testing.T) {
		env := newEnv(t, true)
		src := newPipeSource(t, -1)
		f := env.fills.Start(t.Context(), digest, src.source, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := f.Size(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Size with a cancelled context: %v", err)
		}
	})
}

func TestFillFindsBlobAlreadyStored(t *testing.T) {
	env := newEnv(t, true)
	data, digest := blob(8, 5000)
	env.put(t, digest, data)
	var calls atomic.Int32
	var committed atomic.Int64
	f := env.fills.Start(t.Context(), digest, staticSource(nil, 0, &calls, nil), func(_ context.Context, size int64) error {
		committed.Store(size)
		return nil
	})
	res := recv(t, readAsync(t.Context(), f, 100, -1))
	if res.err != nil || !bytes.Equal(res.data, data[100:]) {
		t.Fatalf("read: %v", res.err)
	}
	waitDone(t, f)
	if calls.Load() != 0 {
		t.Error("source called for a stored blob")
	}
	if committed.Load() != int64(len(data)) {
		t.Errorf("onCommit size = %d, want %d", committed.Load(), len(data))
	}
}

func TestFillRejectsInvalidDigest(t *testing.T) {
	env := newEnv(t, true)
	var calls atomic.Int32
	f := env.fills.Start(t.Context(), "sha256:../../etc/passwd", staticSource(nil, 0, &calls, nil), nil)
	res := recv(t, readAsync(t.Context(), f, 0, -1))
	var ip *storage.InvalidPathError
	if !errors.As(res.err, &ip) {
		t.Fatalf("read: %v, want *storage.InvalidPathError", res.err)
	}
	waitDone(t, f)
	if calls.Load() != 0 {
		t.Error("source called for an invalid digest")
	}
}

func TestFillTimeout(t *testing.T) {
	env := newEnv(t, true, WithTimeout(time.Millisecond))
	_, digest := blob(9, 10)
	src := newPipeSource(t, 10) // never fed: the upstream hangs
	f := env.fills.Start(t.Context(), digest, src.source, nil)
	waitDone(t, f)
	if !errors.Is(f.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want context.DeadlineExceeded", f.Err())
	}
	env.wantNothingStored(t, digest)
}

type recordingLocker struct {
	mu               sync.Mutex
	locked, unlocked []string
}

func (l *recordingLocker) Lock(_ context.Context, digest string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.locked = append(l.locked, digest)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.unlocked = append(l.unlocked, digest)
	}, nil
}

// TestFillTimeoutIsOnProgress checks that the fill timeout counts time without a byte staged,
// not the whole fill: a source that sends a byte every 20 ms for 1 s (five times the
// timeout) completes.
func TestFillTimeoutIsOnProgress(t *testing.T) {
	env := newEnv(t, true, WithTimeout(200*time.Millisecond))
	data, digest := blob(10, 50)
	src := newPipeSource(t, int64(len(data)))
	f := env.fills.Start(t.Context(), digest, src.source, nil)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range data {
		<-tick.C
		src.feed(t, data[i:i+1])
	}
	src.pw.Close()
	waitDone(t, f)
	if err := f.Err(); err != nil {
		t.Fatalf("a slow but live fill failed: %v", err)
	}
	env.wantStored(t, digest, data)
}

func TestFillTakesTheLocker(t *testing.T) {
	locker := &recordingLocker{}
	env := newEnv(t, true, WithLocker(locker))
	data, digest := blob(10, 1000)
	var calls atomic.Int32
	f := env.fills.Start(t.Context(), digest, staticSource(data, int64(len(data)), &calls, nil), nil)
	waitDone(t, f)
	locker.mu.Lock()
	defer locker.mu.Unlock()
	if len(locker.locked) != 1 || len(locker.unlocked) != 1 || locker.locked[0] != digest {
		t.Errorf("locked %v, unlocked %v; want %s once each", locker.locked, locker.unlocked, digest)
	}
}

// genReader produces n pseudo-random bytes without holding them.
type genReader struct {
	state uint64
	left  int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	for i := range p {
		g.state ^= g.state << 13
		g.state ^= g.state >> 7
		g.state ^= g.state << 17
		p[i] = byte(g.state)
	}
	g.left -= int64(len(p))
	return len(p), nil
}

func TestFillMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 64 MiB blob")
	}
	const size = 64 << 20
	h := sha256.New()
	if _, err := io.Copy(h, &genReader{state: 42, left: size}); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	drivers(t, func(t *testing.T, move bool) {
		env := newEnv(t, move)
		src := func(context.Context, int64) (io.ReadCloser, int64, error) {
			return io.NopCloser(&genReader{state: 42, left: size}), size, nil
		}
		var before, after runtime.MemStats
		readMemStats(&before)
		f := env.fills.Start(t.Context(), digest, src, nil)
		r := f.NewReader(t.Context(), 0)
		rh := sha256.New()
		n, err := io.CopyBuffer(rh, r, make([]byte, 32<<10))
		r.Close()
		if err != nil || n != size {
			t.Fatalf("read %d bytes, %v", n, err)
		}
		waitDone(t, f)
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
		readMemStats(&after)
		if got := "sha256:" + hex.EncodeToString(rh.Sum(nil)); got != digest {
			t.Fatalf("reader got %s", got)
		}
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("allocated %d KiB in total to fill and read a %d MiB blob", allocated>>10, size>>20)
		if allocated > size/16 {
			t.Errorf("allocated %d bytes for a %d-byte blob; want far less", allocated, size)
		}
	})
}

func readMemStats(m *runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(m)
}
