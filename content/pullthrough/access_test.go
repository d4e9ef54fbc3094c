package pullthrough

import (
	"errors"
	"testing"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

// TestGrants checks that grants are per image name and digest.
func TestGrants(t *testing.T) {
	g := newGrants()
	g.add("hub/a", "sha256:1")
	if !g.has("hub/a", "sha256:1") {
		t.Fatal("granted digest not found")
	}
	if g.has("hub/b", "sha256:1") || g.has("hub/a", "sha256:2") {
		t.Fatal("a grant leaked to another image or digest")
	}
}

// TestStoredContentNeedsAGrant checks that a blob or manifest stored for another repository
// (a private one, say) is not served through a pull-through image whose upstream lacks it, and
// that one the upstream confirms is served with one HEAD, then from memory.
func TestStoredContentNeedsAGrant(t *testing.T) {
	up, srv := newFakeUpstream(t)
	env := newCacheEnv(t, srv.URL, Config{})
	ctx := t.Context()
	store := func(b []byte) string {
		d := oci.Digest(b)
		p, _ := storage.BlobPath(d)
		w, err := env.store.Writer(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	secret := store([]byte("a private layer"))
	secretManifest := store([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`))
	public := []byte("a public layer")
	publicDigest := store(public)
	up.mu.Lock()
	up.blobs[publicDigest] = public
	up.mu.Unlock()

	im, err := env.cache.Image(ctx, env.pt, "library/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Blob(ctx, secret, false); !errors.Is(err, oci.ErrBlobUnknown) {
		t.Fatalf("stored blob the upstream lacks: err %v, want BLOB_UNKNOWN", err)
	}
	if _, err := im.Manifest(ctx, secretManifest); !errors.Is(err, oci.ErrManifestUnknown) {
		t.Fatalf("stored manifest the upstream lacks: err %v, want MANIFEST_UNKNOWN", err)
	}
	for i := 0; i < 3; i++ {
		bc, err := im.Blob(ctx, publicDigest, false)
		if err != nil {
			t.Fatalf("stored blob the upstream has: %v", err)
		}
		if bc.File == nil {
			t.Fatal("the stored blob was not served from storage")
		}
		_ = bc.File.Close()
	}
	if n := up.count("HEAD blobs " + publicDigest); n != 1 {
		t.Fatalf("upstream HEADs for a confirmed blob: %d, want 1", n)
	}
	if n := up.count("GET blobs " + publicDigest); n != 0 {
		t.Fatalf("upstream GETs for a stored blob: %d, want 0", n)
	}
}
