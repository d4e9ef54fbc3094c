package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

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

// Manifest returns the stored manifest digest, whichever repository holds it, parsed and
// checked against its digest (bytes that do not have it are never served under it), from
// memory when it was read before. Every failure to find such a manifest is
// oci.ErrManifestUnknown (oci.ErrDigestInvalid for a malformed digest).
func (s *Store) Manifest(ctx context.Context, digest string) (*oci.Manifest, error) {
	if m, ok := s.manifests.Get(digest); ok {
		return m, nil
	}
	if _, err := storage.BlobPath(digest); err != nil {
		return nil, oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	raw, err := s.readManifest(ctx, digest)
	if err != nil {
		return nil, oci.ErrManifestUnknown.WithDetail("reference", digest)
	}
	m, err := oci.ParseManifest(raw, "")
	if err != nil {
		return nil, err
	}
	if m.Digest != digest && !oci.ManifestHasDigest(raw, digest) {
		// Storage holds only what was verified when stored; bytes that do not have their
		// digest were put there by something else, and are never served under it.
		s.log.Error("stored manifest does not have its digest", "digest", digest, "computed", m.Digest)
		return nil, oci.ErrManifestUnknown.WithDetail("reference", digest)
	}
	m.Digest = digest
	s.manifests.Add(digest, m)
	return m, nil
}

// PutManifest writes a manifest byte for byte under its digest (atomically), which must be
// the digest computed from its bytes; a manifest already stored is left as it is.
func (s *Store) PutManifest(ctx context.Context, m *oci.Manifest) error {
	if len(m.Raw) > oci.MaxManifestSize || !oci.ManifestHasDigest(m.Raw, m.Digest) {
		return fmt.Errorf("manifest %s: refusing to store bytes of another digest or over %d bytes", m.Digest, oci.MaxManifestSize)
	}
	path, err := storage.BlobPath(m.Digest)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	if _, err := s.storage.Stat(ctx, path); err == nil {
		return nil
	}
	w, err := s.storage.Writer(ctx, path)
	if err != nil {
		return fmt.Errorf("store manifest %s: %w", m.Digest, err)
	}
	defer w.Close()
	if _, err := io.Copy(w, bytes.NewReader(m.Raw)); err != nil {
		return fmt.Errorf("store manifest %s: %w", m.Digest, err)
	}
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("store manifest %s: %w", m.Digest, err)
	}
	return nil
}

// errManifestTooLarge reports stored manifest bytes over oci.MaxManifestSize.
var errManifestTooLarge = errors.New("larger than the manifest size limit")

// readManifest reads the stored bytes of the manifest digest, at most oci.MaxManifestSize,
// as they are (unchecked). A manifest not in storage fails with *storage.PathNotFoundError.
func (s *Store) readManifest(ctx context.Context, digest string) ([]byte, error) {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	rc, err := s.storage.Reader(ctx, p, 0)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", digest, err)
	}
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(io.LimitReader(rc, oci.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", digest, err)
	}
	if len(raw) > oci.MaxManifestSize {
		return nil, fmt.Errorf("read manifest %s: %w (%d bytes)", digest, errManifestTooLarge, oci.MaxManifestSize)
	}
	return raw, nil
}
