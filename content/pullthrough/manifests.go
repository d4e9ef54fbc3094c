package pullthrough

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/pulpgo/pulpgo/content/lru"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

// maxManifestSize bounds what is read of a stored manifest.
const maxManifestSize = oci.MaxManifestSize

// The memo of parsed manifests is bounded by bytes: a manifest counts twice its size (its raw
// bytes and what parsing made of them), and one over memoItemBytes is not kept at all, so
// that large upstream manifests cannot grow the process.
const (
	memoEntries   = 4096
	memoBytes     = 64 << 20
	memoItemBytes = 256 << 10
)

func newManifestMemo() *lru.Cache[string, *oci.Manifest] {
	return lru.New(lru.Options[string, *oci.Manifest]{MaxEntries: memoEntries, MaxBytes: memoBytes,
		MaxItemBytes: memoItemBytes, Size: func(_ string, m *oci.Manifest) int64 { return 2*int64(len(m.Raw)) + 512 }})
}

// storedManifest reads a stored manifest by digest.
func (c *Cache) storedManifest(ctx context.Context, digest string) (*oci.Manifest, error) {
	if m, ok := c.manifests.Get(digest); ok {
		return m, nil
	}
	path, err := storage.BlobPath(digest)
	if err != nil {
		return nil, oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	r, err := c.cfg.Storage.Reader(ctx, path, 0)
	if err != nil {
		return nil, oci.ErrManifestUnknown.WithDetail("reference", digest)
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil || len(raw) > maxManifestSize {
		return nil, oci.ErrManifestUnknown.WithDetail("reference", digest)
	}
	m, err := oci.ParseManifest(raw, "")
	if err != nil {
		return nil, err
	}
	if m.Digest != digest && !oci.ManifestHasDigest(raw, digest) {
		// Storage holds only what was verified when stored; bytes that do not have their
		// digest were put there by something else, and are never served under it.
		c.cfg.Logger.Error("stored manifest does not have its digest", "digest", digest, "computed", m.Digest)
		return nil, oci.ErrManifestUnknown.WithDetail("reference", digest)
	}
	m.Digest = digest
	c.manifests.Add(digest, m)
	return m, nil
}

// storeManifest writes a manifest byte for byte under its digest (atomically), which must be
// the digest the server computes from its bytes.
func (c *Cache) storeManifest(ctx context.Context, m *oci.Manifest) error {
	if len(m.Raw) > maxManifestSize || !oci.ManifestHasDigest(m.Raw, m.Digest) {
		return fmt.Errorf("manifest %s: refusing to store bytes of another digest or over %d bytes", m.Digest, maxManifestSize)
	}
	path, err := storage.BlobPath(m.Digest)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Storage.Stat(ctx, path); err == nil {
		return nil
	}
	w, err := c.cfg.Storage.Writer(ctx, path)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, bytes.NewReader(m.Raw)); err != nil {
		return err
	}
	return w.Commit(ctx)
}
