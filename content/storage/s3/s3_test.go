package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/s3"
	"github.com/pulpgo/pulpgo/content/storage/storagetest"
	"github.com/pulpgo/pulpgo/test/s3server"
)

// newDriver returns a driver on srv's bucket below a fresh prefix.
func newDriver(t *testing.T, srv *s3server.Server, bucket string) *s3.Driver {
	t.Helper()
	d, err := s3.New(s3.Config{Bucket: bucket, Prefix: "p/" + strings.ToLower(rand.Text()[:10]), Endpoint: srv.Endpoint,
		AccessKey: s3server.AccessKey, SecretKey: s3server.SecretKey, PathStyle: true, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestS3 runs the storage conformance suite, unchanged, on SeaweedFS, then what is the
// driver's own: uploads of growing files, their aborts and the sweep, presigned URLs.
func TestS3(t *testing.T) {
	srv := s3server.Start(t, "")
	bucket := srv.NewBucket(t)
	t.Run("Conformance", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t, srv, bucket) })
	})
	t.Run("StreamGrowingFile", func(t *testing.T) { testStream(t, newDriver(t, srv, bucket)) })
	t.Run("StreamCancelAborts", func(t *testing.T) { testStreamCancel(t, newDriver(t, srv, bucket)) })
	t.Run("SweepUploads", func(t *testing.T) { testSweep(t, newDriver(t, srv, bucket)) })
	t.Run("Fill", func(t *testing.T) { testFill(t, newDriver(t, srv, bucket)) })
	t.Run("FillWrongDigest", func(t *testing.T) { testFillWrongDigest(t, newDriver(t, srv, bucket)) })
	t.Run("FillUpstreamCut", func(t *testing.T) { testFillUpstreamCut(t, newDriver(t, srv, bucket)) })
	t.Run("FillMemory", func(t *testing.T) { testFillMemory(t, newDriver(t, srv, bucket)) })
	t.Run("Presign", func(t *testing.T) { testPresign(t, srv, newDriver(t, srv, bucket)) })
	t.Run("WrongCredentials", func(t *testing.T) {
		d, err := s3.New(s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, AccessKey: s3server.AccessKey,
			SecretKey: "wrong", PathStyle: true, ScratchDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		err = d.Check(t.Context())
		if err == nil {
			t.Fatal("Check with a wrong secret key succeeded")
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("the error shows the secret key: %v", err)
		}
	})
}

func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	p := filepath.Join(t.TempDir(), "local")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func read(t *testing.T, d *s3.Driver, p string, off int64) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), p, off)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantNoUploads(t *testing.T, d *s3.Driver) {
	t.Helper()
	ups, err := d.Uploads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 0 {
		t.Errorf("%d unfinished multipart uploads left: %+v", len(ups), ups)
	}
}

// testStream uploads a file of more than two parts reported as it grows; nothing is visible
// before Commit, the object is whole after it, and no multipart upload is left.
func testStream(t *testing.T, d *s3.Driver) {
	ctx := t.Context()
	local, data := randomFile(t, 2*(16<<20)+12345)
	s, err := d.Stream(ctx, local, "blobs/grown")
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n += 5 << 20 {
		s.Grew(int64(n))
	}
	if _, err := d.Stat(ctx, "blobs/grown"); err == nil {
		t.Fatal("the object is visible before Commit")
	}
	if err := s.Commit(ctx, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, "blobs/grown", 0); !bytes.Equal(got, data) {
		t.Fatalf("object of %d bytes differs from the %d streamed", len(got), len(data))
	}
	if got := read(t, d, "blobs/grown", 16<<20-1); !bytes.Equal(got, data[16<<20-1:]) {
		t.Error("object read across a part boundary differs")
	}
	if err := s.Cancel(ctx); err != nil {
		t.Errorf("Cancel after Commit: %v", err)
	}
	wantNoUploads(t, d)
}

// testStreamCancel cancels an upload whose first part went out: the multipart upload is
// aborted and nothing is at the path.
func testStreamCancel(t *testing.T, d *s3.Driver) {
	ctx := t.Context()
	local, data := randomFile(t, 16<<20+100)
	s, err := d.Stream(ctx, local, "blobs/cancelled")
	if err != nil {
		t.Fatal(err)
	}
	s.Grew(int64(len(data)))
	// The first part goes out in the background; wait for the multipart upload to exist.
	waitUploads(t, d, 1)
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	wantNoUploads(t, d)
	if _, err := d.Stat(ctx, "blobs/cancelled"); err == nil {
		t.Error("a cancelled upload left an object")
	}
	if err := s.Commit(ctx, int64(len(data))); err == nil {
		t.Error("Commit after Cancel succeeded")
	}
}

// testSweep leaves a multipart upload behind (as a crashed process does) and sweeps it: an age
// it is younger than keeps it, 0 aborts it.
func testSweep(t *testing.T, d *s3.Driver) {
	ctx := t.Context()
	local, data := randomFile(t, 16<<20+1)
	s, err := d.Stream(ctx, local, "blobs/crashed")
	if err != nil {
		t.Fatal(err)
	}
	s.Grew(int64(len(data)))
	waitUploads(t, d, 1)
	if n, err := d.SweepUploads(ctx, s3.SweepAge); err != nil || n != 0 {
		t.Fatalf("SweepUploads(%v) = %d, %v; want a young upload kept", s3.SweepAge, n, err)
	}
	waitUploads(t, d, 1)
	if n, err := d.SweepUploads(ctx, 0); err != nil || n != 1 {
		t.Fatalf("SweepUploads(0) = %d, %v; want 1 aborted", n, err)
	}
	wantNoUploads(t, d)
	if err := s.Commit(ctx, int64(len(data))); err == nil {
		t.Error("Commit of a swept upload succeeded")
	}
	_ = s.Cancel(ctx)
}

// waitUploads waits until d lists n unfinished uploads (a background send starts them).
func waitUploads(t *testing.T, d *s3.Driver, n int) {
	t.Helper()
	for {
		ups, err := d.Uploads(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) == n {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%d unfinished uploads, want %d", len(ups), n)
		case <-time.After(20 * time.Millisecond): // polling the store, not timing it
		}
	}
}

// testPresign fetches an object by its presigned URL, whole and by a range, and checks that
// the store refuses the same URL unsigned (so the signature is what lets the client in).
func testPresign(t *testing.T, srv *s3server.Server, d *s3.Driver) {
	ctx := t.Context()
	storagetest.Put(t, d, "blobs/signed", []byte("0123456789"))
	u, err := d.PresignGet(ctx, "blobs/signed", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, srv.Endpoint+"/") {
		t.Errorf("presigned URL %s is not on the endpoint %s", u, srv.Endpoint)
	}
	got, status := s3server.Get(t, u, "")
	if status != 200 || string(got) != "0123456789" {
		t.Errorf("presigned GET = %d %q", status, got)
	}
	got, status = s3server.Get(t, u, "bytes=3-5")
	if status != 206 || string(got) != "345" {
		t.Errorf("presigned GET with Range bytes=3-5 = %d %q, want 206 \"345\"", status, got)
	}
	unsigned, _, _ := strings.Cut(u, "?")
	if _, status := s3server.Get(t, unsigned, ""); status != 403 {
		t.Errorf("unsigned GET = %d, want 403", status)
	}
}
