package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/s3"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newFills returns a fill engine committing to d, staging in a temporary directory.
func newFills(t *testing.T, d storage.Driver) (*fill.Fills, string) {
	t.Helper()
	staging, err := fill.OpenStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Close() })
	fills := fill.New(d, staging, nil)
	t.Cleanup(fills.Wait)
	return fills, staging.Dir()
}

// pipeSource is a fake upstream the test feeds by hand: the fill reads what the test writes.
func pipeSource(size int64) (fill.Source, *io.PipeWriter) {
	pr, pw := io.Pipe()
	return func(context.Context, int64) (io.ReadCloser, int64, error) { return pr, size, nil }, pw
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantNothingLeft(t *testing.T, d *s3.Driver, p, stagingDir string) {
	t.Helper()
	if _, err := d.Stat(t.Context(), p); err == nil {
		t.Errorf("an object is at %s", p)
	}
	wantNoUploads(t, d)
	if entries, _ := os.ReadDir(stagingDir); len(entries) != 0 {
		t.Errorf("%d staging files left", len(entries))
	}
}

// pipeFill starts a fill of a random blob of size bytes onto d from a pipeSource: the test
// writes the upstream's bytes (data, or others) into the returned writer.
type pipeFill struct {
	f          *fill.Fill
	upstream   *io.PipeWriter
	data       []byte
	path       string // the blob's object path
	stagingDir string
}

func startPipeFill(t *testing.T, d *s3.Driver, size int) *pipeFill {
	t.Helper()
	fills, stagingDir := newFills(t, d)
	data := make([]byte, size)
	_, _ = rand.Read(data)
	digest := digestOf(data)
	p, _ := storage.BlobPath(digest)
	src, upstream := pipeSource(int64(size))
	return &pipeFill{f: fills.Start(t.Context(), digest, src, nil), upstream: upstream, data: data, path: p, stagingDir: stagingDir}
}

// testFill fills a blob of three parts through the fill engine onto S3: readers that join
// mid-fill (from the start and at an offset, as a Range request does) get the right bytes
// from the staging file while the first part is already being uploaded and nothing is
// visible in the bucket; after the fill the object is whole and no multipart upload is left.
func testFill(t *testing.T, d *s3.Driver) {
	ctx := t.Context()
	pf := startPipeFill(t, d, 40<<20+7)
	f, upstream, data, p := pf.f, pf.upstream, pf.data, pf.path
	const half = 20 << 20
	if _, err := upstream.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	whole := f.NewReader(ctx, 0)
	defer whole.Close()
	if got := readN(t, whole, 10<<20); !bytes.Equal(got, data[:10<<20]) {
		t.Fatal("a reader during the fill got wrong bytes")
	}
	ranged := f.NewReader(ctx, 5<<20+3)
	if got := readN(t, ranged, 1<<20); !bytes.Equal(got, data[5<<20+3:6<<20+3]) {
		t.Fatal("a ranged reader during the fill got wrong bytes")
	}
	ranged.Close()
	// The first part (16 MiB) of the 20 written goes out while the fill waits for upstream.
	waitUploads(t, d, 1)
	if _, err := d.Stat(ctx, p); err == nil {
		t.Fatal("the blob is visible in the bucket before the fill verified it")
	}
	if _, err := upstream.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	upstream.Close()
	<-f.Done()
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(whole); err != nil || !bytes.Equal(got, data[10<<20:]) {
		t.Fatalf("the reader's rest: %d bytes, %v; want the blob's last %d bytes", len(got), err, len(data)-10<<20)
	}
	if got := read(t, d, p, 0); !bytes.Equal(got, data) {
		t.Fatalf("the object in the bucket (%d bytes) is not the blob (%d)", len(got), len(data))
	}
	// A reader that starts after the commit reads the bucket.
	late := f.NewReader(ctx, 33<<20)
	defer late.Close()
	if got, err := io.ReadAll(late); err != nil || !bytes.Equal(got, data[33<<20:]) {
		t.Fatalf("a reader after the commit: %d bytes, %v", len(got), err)
	}
	wantNoUploads(t, d)
	if entries, _ := os.ReadDir(pf.stagingDir); len(entries) != 0 {
		t.Errorf("%d staging files left after the commit", len(entries))
	}
}

// testFillWrongDigest fills a blob whose upstream sends other bytes (of the announced size):
// the fill fails and leaves no object, no multipart upload (its first part had gone out) and
// no staging file.
func testFillWrongDigest(t *testing.T, d *s3.Driver) {
	pf := startPipeFill(t, d, 20<<20)
	f, upstream, want := pf.f, pf.upstream, pf.data
	bad := bytes.Clone(want)
	bad[len(bad)-1] ^= 1
	if _, err := upstream.Write(bad[:len(bad)-1]); err != nil {
		t.Fatal(err)
	}
	waitUploads(t, d, 1)
	if _, err := upstream.Write(bad[len(bad)-1:]); err != nil {
		t.Fatal(err)
	}
	upstream.Close()
	<-f.Done()
	var mismatch *fill.DigestMismatchError
	if !errors.As(f.Err(), &mismatch) {
		t.Fatalf("fill error = %v, want a digest mismatch", f.Err())
	}
	wantNothingLeft(t, d, pf.path, pf.stagingDir)
}

// testFillUpstreamCut cuts the upstream after more than a part: the fill fails, aborts its
// multipart upload, and a sweep finds nothing left either.
func testFillUpstreamCut(t *testing.T, d *s3.Driver) {
	pf := startPipeFill(t, d, 20<<20)
	f, upstream, data := pf.f, pf.upstream, pf.data
	if _, err := upstream.Write(data[:17<<20]); err != nil {
		t.Fatal(err)
	}
	waitUploads(t, d, 1)
	upstream.CloseWithError(io.ErrUnexpectedEOF)
	<-f.Done()
	if f.Err() == nil {
		t.Fatal("a fill whose upstream was cut succeeded")
	}
	wantNothingLeft(t, d, pf.path, pf.stagingDir)
	if n, err := d.SweepUploads(t.Context(), 0); err != nil || n != 0 {
		t.Errorf("SweepUploads after the failed fill = %d, %v; want nothing to abort", n, err)
	}
}

// testFillMemory fills a 256 MiB blob, generated as the fill reads it, and logs how much the
// process's RSS grew at its peak: the blob goes through a staging file and parts read back from it,
// so the growth is buffers, not the blob. The bound checked is generous (half the blob).
func testFillMemory(t *testing.T, d *s3.Driver) {
	ctx := t.Context()
	fills, _ := newFills(t, d)
	const size = 256 << 20
	gen := func() io.Reader {
		return io.LimitReader(mrand.NewChaCha8([32]byte{42}), size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, gen()); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	debug.FreeOSMemory() // the earlier subtests' buffers, so that the baseline is this test's
	before := rss(t)
	f := fills.Start(ctx, digest, func(context.Context, int64) (io.ReadCloser, int64, error) {
		return io.NopCloser(gen()), size, nil
	}, nil)
	// Sampling the RSS while the fill runs (the peak is what matters, not how long it took).
	peak := before
	for done := false; !done; {
		select {
		case <-f.Done():
			done = true
		case <-time.After(10 * time.Millisecond):
		}
		peak = max(peak, rss(t))
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	after := peak
	p, _ := storage.BlobPath(digest)
	fi, err := d.Stat(ctx, p)
	if err != nil || fi.Size != size {
		t.Fatalf("Stat = %+v, %v; want %d bytes", fi, err, size)
	}
	t.Logf("fill of a %d MiB blob onto S3: RSS %d MiB before, peak %d MiB during (+%d MiB)",
		size>>20, before>>20, after>>20, (after-before)>>20)
	if after-before > size/2 {
		t.Errorf("peak RSS grew by %d MiB for a %d MiB blob", (after-before)>>20, size>>20)
	}
	wantNoUploads(t, d)
}

// rss returns the process's resident set size (VmRSS).
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal(fmt.Errorf("no VmRSS in /proc/self/status"))
	return 0
}
