package pullthrough

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

// TestManifestGrants: a manifest the upstream confirmed lets its image serve the stored
// layers it names, also to a cache-only client before the pull is recorded; a foreign layer
// it names does not, so an upstream manifest naming another image's digest as a foreign
// layer (which registries accept without holding the blob) reads nothing of that image.
func TestManifestGrants(t *testing.T) {
	up, srv := newFakeUpstream(t)
	e := newCacheEnv(t, srv.URL, Config{})
	ctx := t.Context()
	store := func(b []byte) string {
		d := oci.Digest(b)
		p, err := storage.BlobPath(d)
		if err != nil {
			t.Fatal(err)
		}
		w, err := e.store.Writer(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	secret := []byte("a private layer of another image, which the upstream does not have")
	secretDigest := store(secret)
	shared := []byte("a layer stored for another image, which this image's upstream has too")
	sharedDigest := store(shared)
	up.blobs[sharedDigest] = shared
	cfg := []byte("{}")
	up.blobs[oci.Digest(cfg)] = cfg
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":%q,"size":%d},"layers":[`+
		`{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":%q,"size":%d},`+
		`{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":%q,"size":%d,"urls":["https://example.invalid/x"]}]}`,
		oci.Digest(cfg), len(cfg), sharedDigest, len(shared), secretDigest, len(secret))
	up.addManifest("latest", m)

	im, err := e.cache.Image(ctx, e.pt, "someone/image")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Manifest(ctx, "latest"); err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context, digest string) ([]byte, error) {
		bc, err := im.Blob(ctx, digest, false)
		if err != nil {
			return nil, err
		}
		var rc io.ReadCloser = bc.File
		if rc == nil {
			rc = bc.Open(ctx, 0)
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	heads := up.count("HEAD blobs " + sharedDigest)
	b, err := read(cacheonly.With(ctx), sharedDigest)
	if err != nil || string(b) != string(shared) {
		t.Errorf("cache-only read of a stored layer the confirmed manifest names: %q, %v", b, err)
	}
	if n := up.count("HEAD blobs " + sharedDigest); n != heads {
		t.Errorf("the granted layer cost %d upstream HEADs", n-heads)
	}
	for _, c := range []context.Context{ctx, cacheonly.With(ctx)} {
		if b, err := read(c, secretDigest); err == nil {
			t.Errorf("a foreign layer's digest named by the upstream read another image's blob: %q", b)
		}
	}
}
