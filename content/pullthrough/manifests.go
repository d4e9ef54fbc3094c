package pullthrough

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

// maxManifestSize bounds what is read of a stored manifest.
const maxManifestSize = 4 << 20

// manifestMemo keeps parsed manifests by digest: they never change, so the hot path of warm
// tag pulls reads no file.
type manifestMemo struct {
	mu sync.RWMutex
	m  map[string]*oci.Manifest
}

var memoLimit = 4096

func (c *Cache) memo() *manifestMemo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.manifests == nil {
		c.manifests = &manifestMemo{m: map[string]*oci.Manifest{}}
	}
	return c.manifests
}

// storedManifest reads a stored manifest by digest.
func (c *Cache) storedManifest(ctx context.Context, digest string) (*oci.Manifest, error) {
	memo := c.memo()
	memo.mu.RLock()
	m, ok := memo.m[digest]
	memo.mu.RUnlock()
	if ok {
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
	m, err = oci.ParseManifest(raw, "")
	if err != nil {
		return nil, err
	}
	m.Digest = digest
	memo.mu.Lock()
	if len(memo.m) >= memoLimit {
		for k := range memo.m {
			delete(memo.m, k)
			break
		}
	}
	memo.m[digest] = m
	memo.mu.Unlock()
	return m, nil
}

// storeManifest writes a manifest byte for byte under its digest (atomically).
func (c *Cache) storeManifest(ctx context.Context, m *oci.Manifest) error {
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
