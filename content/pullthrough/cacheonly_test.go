package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// total is the number of requests the upstream answered.
func (u *fakeUpstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, v := range u.hits {
		n += v
	}
	return n
}

// imageManifest returns an OCI manifest with layer, labelled so that each label is another
// digest.
func imageManifest(layer []byte, label string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[],"annotations":{"l":%q}}`,
		oci.MediaTypeOCIManifest, oci.Digest(layer), len(layer), label)
}

// TestCacheOnly: a cache-only context (an anonymous pull with --fills-require-auth) is served
// what the cache holds, whatever the tag's age and wherever the upstream moved it, with no
// upstream request at all; what is not cached, and a name without its objects, are
// ErrAuthRequired and create nothing. A normal context then revalidates as before.
func TestCacheOnly(t *testing.T) {
	up, srv := newFakeUpstream(t)
	layer := []byte("the config blob")
	other := []byte("a blob the cache never fetched")
	up.blobs[oci.Digest(layer)] = layer
	up.blobs[oci.Digest(other)] = other
	d1 := up.addManifest("v1", imageManifest(layer, "one"))
	up.addManifest("v2", imageManifest(layer, "two"))
	e := newCacheEnv(t, srv.URL, Config{}) // no freshness window: users' pulls always ask
	anon := cacheonly.With(context.Background())
	user := context.Background()

	if _, err := e.cache.Image(anon, e.pt, "library/x"); !errors.Is(err, cacheonly.ErrAuthRequired) {
		t.Fatalf("anonymous first pull: %v, want %v", err, cacheonly.ErrAuthRequired)
	}
	var n int64
	e.db.Model(&models.Distribution{}).Where("base_path = ?", "cache/library/x").Count(&n)
	if n != 0 || up.total() != 0 {
		t.Fatalf("an anonymous cache-only pull made %d distributions and %d upstream requests", n, up.total())
	}

	// A user fills the cache.
	img, err := e.cache.Image(user, e.pt, "library/x")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := img.Manifest(user, "v1"); err != nil || m.Digest != d1 {
		t.Fatalf("user's pull of v1: %v", err)
	}
	readBlob(t, img, user, oci.Digest(layer))
	e.cache.fills.Wait() // stored, not just being filled
	before := up.total()

	// The tag moves upstream: anonymous clients keep getting the cached one, asking nothing.
	d1b := up.addManifest("v1", imageManifest(layer, "one, moved"))
	img, err = e.cache.Image(anon, e.pt, "library/x")
	if err != nil {
		t.Fatalf("anonymous pull of a cached image: %v", err)
	}
	for range 3 {
		if m, err := img.Manifest(anon, "v1"); err != nil || m.Digest != d1 {
			t.Fatalf("anonymous pull of the cached tag: %v, want %s", digestOf(m, err), d1)
		}
	}
	if _, err := img.Manifest(anon, d1); err != nil {
		t.Fatalf("anonymous pull by digest: %v", err)
	}
	readBlob(t, img, anon, oci.Digest(layer))
	if bc, err := img.Blob(anon, oci.Digest(layer), true); err != nil || bc.Size != int64(len(layer)) {
		t.Fatalf("anonymous HEAD of a cached blob: %v", err)
	}
	for _, c := range []struct {
		what string
		do   func() error
	}{
		{"uncached tag", func() error { _, err := img.Manifest(anon, "v2"); return err }},
		{"uncached digest", func() error { _, err := img.Manifest(anon, d1b); return err }},
		{"uncached blob", func() error { _, err := img.Blob(anon, oci.Digest(other), false); return err }},
		{"uncached blob HEAD", func() error { _, err := img.Blob(anon, oci.Digest(other), true); return err }},
	} {
		if err := c.do(); !errors.Is(err, cacheonly.ErrAuthRequired) {
			var oe *oci.Error
			if !errors.As(err, &oe) || oe.Status != 401 {
				t.Errorf("%s: %v, want a 401", c.what, err)
			}
		}
	}
	if got := up.total(); got != before {
		t.Fatalf("anonymous cache-only pulls made %d upstream requests, want 0", got-before)
	}

	// A user's pull still asks the upstream and follows the tag.
	if m, err := img.Manifest(user, "v1"); err != nil || m.Digest != d1b {
		t.Fatalf("user's pull after the move: %v, want %s", digestOf(m, err), d1b)
	}
	if up.total() == before {
		t.Fatal("the user's pull asked the upstream nothing")
	}
}

// digestOf is m's digest, or err.
func digestOf(m *oci.Manifest, err error) any {
	if err != nil {
		return err
	}
	return m.Digest
}

// readBlob reads the whole blob digest of img.
func readBlob(t *testing.T, img oci.Image, ctx context.Context, digest string) {
	t.Helper()
	bc, err := img.Blob(ctx, digest, false)
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	var rc io.ReadCloser
	if bc.File != nil {
		rc = bc.File
	} else {
		rc = bc.Open(ctx, 0)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatalf("read blob %s: %v", digest, err)
	}
}

// TestImageDatabaseFailure: when the database fails while the cache looks up a name's child
// distribution or the pull-through remote, Image returns that failure (a 503 to the client),
// not NAME_UNKNOWN: a cached name must not look unknown during a database restart.
func TestImageDatabaseFailure(t *testing.T) {
	_, srv := newFakeUpstream(t)
	e := newCacheEnv(t, srv.URL, Config{})
	for _, table := range []string{"distributions", "remotes"} {
		var fail atomic.Bool
		fail.Store(true)
		name := "test:fail_" + table
		if err := e.db.Callback().Query().Before("gorm:query").Register(name, func(tx *gorm.DB) {
			if tx.Statement.Table == table && fail.Load() {
				tx.AddError(models.Unavailable("database", errors.New("connection reset")))
			}
		}); err != nil {
			t.Fatal(err)
		}
		_, err := e.cache.Image(context.Background(), e.pt, "library/x")
		if errors.Is(err, oci.ErrNameUnknown) || !models.IsUnavailable(err) {
			t.Errorf("lookup of %s failing: Image = %v, want the database's failure", table, err)
		}
		fail.Store(false)
		_ = e.db.Callback().Query().Remove(name)
	}
}
