package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
)

// Store reads repositories from the database and their objects from blob storage, where
// blobs and manifests are kept byte for byte at storage.BlobPath(digest).
type Store struct {
	db        *gorm.DB
	storage   storage.Driver
	log       *slog.Logger
	manifests *lru.Cache[string, *oci.Manifest] // verified stored manifests by digest
}

// New returns a Store over db and driver. A nil logger means slog.Default().
func New(db *gorm.DB, driver storage.Driver, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	return &Store{db: db, storage: driver, log: logger, manifests: newManifestMemo()}
}

// Image returns version version of repository repoID, served under name.
func (s *Store) Image(name, repoID string, version int64) *Image {
	return &Image{s: s, name: name, repoID: repoID, version: version}
}

// Latest returns the latest version of repository repoID, served under name: whichever
// version is the latest when it is asked (a pull-through repository grows as pulls are
// recorded).
func (s *Store) Latest(name, repoID string) *Image {
	return &Image{s: s, name: name, repoID: repoID, latest: true}
}

// Blob opens the stored blob digest, whichever repository holds it: as a File when the driver
// can seek (storage.Opener), so that it is served with ranges and conditional requests, or as
// a stream from an offset otherwise. A blob not in storage fails with *storage.PathNotFoundError.
func (s *Store) Blob(ctx context.Context, digest string) (*oci.BlobContent, error) {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", digest, err)
	}
	if o, ok := s.storage.(storage.Opener); ok {
		f, info, err := o.Open(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("open blob %s: %w", digest, err)
		}
		return &oci.BlobContent{Digest: digest, Size: info.Size, ModTime: info.ModTime, File: f}, nil
	}
	info, err := s.storage.Stat(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("stat blob %s: %w", digest, err)
	}
	open := func(ctx context.Context, offset int64) io.ReadCloser {
		rc, err := s.storage.Reader(ctx, p, offset)
		if err != nil {
			return errReader{fmt.Errorf("read blob %s: %w", digest, err)}
		}
		return rc
	}
	return &oci.BlobContent{Digest: digest, Size: info.Size, ModTime: info.ModTime, Open: open}, nil
}

// errReader is a reader that fails with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
func (r errReader) Close() error             { return nil }
