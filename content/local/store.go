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
	remote    RemoteBlobs                       // nil: blobs not in storage are unknown
}

// RemoteBlobs serves the blobs that a repository version holds but storage does not have,
// because an on_demand or streamed sync recorded where to fetch them instead of fetching
// them. The content app wires one in (WithRemoteBlobs); the Store only decides who may have
// which blob.
type RemoteBlobs interface {
	// Blob returns the blob with digest, which the caller has checked that the version it
	// serves holds. head is true for HEAD requests, which may be answered without the bytes.
	// Errors are *oci.Error (BLOB_UNKNOWN when no source has it, upstream failures mapped)
	// or internal failures.
	Blob(ctx context.Context, digest string, head bool) (*oci.BlobContent, error)
}

// Option configures a Store.
type Option func(*Store)

// WithRemoteBlobs makes the Store's images serve the blobs their version holds but storage
// lacks through rb (nil: such blobs are unknown).
func WithRemoteBlobs(rb RemoteBlobs) Option { return func(s *Store) { s.remote = rb } }

// New returns a Store over db and driver. A nil logger means slog.Default().
func New(db *gorm.DB, driver storage.Driver, logger *slog.Logger, opts ...Option) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Store{db: db, storage: driver, log: logger, manifests: newManifestMemo()}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Image returns version version of repository repoID, served under name.
func (s *Store) Image(name, repoID string, version int64) *Image {
	return &Image{s: s, name: name, repoID: repoID, version: version}
}

// Pinned returns version version of repository repoID, served under name by a distribution
// fixed to that version: unlike Image, it does not serve the repository's pending blobs (what
// is being pushed belongs to the repository's own distribution, which may be private).
func (s *Store) Pinned(name, repoID string, version int64) *Image {
	return &Image{s: s, name: name, repoID: repoID, version: version, pinned: true}
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
