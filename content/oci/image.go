package oci

import (
	"context"
	"io"
	"time"
)

// Image is one repository as the registry serves it: the content of an ordinary
// distribution, or an image behind a pull-through distribution.
type Image interface {
	// Name is the repository name the client asked for.
	Name() string
	// Tags lists the tags served, sorted.
	Tags(ctx context.Context) ([]string, error)
	// Manifest returns the manifest for a tag or digest, byte for byte; errors are *Error
	// (ErrManifestUnknown...) or upstream failures mapped to them.
	Manifest(ctx context.Context, ref string) (*Manifest, error)
	// Blob returns the blob with digest. head is true for HEAD requests, where a cache may
	// answer from the upstream's size without fetching the bytes.
	Blob(ctx context.Context, digest string, head bool) (*BlobContent, error)
}

// BlobContent is a blob ready to serve: either a stored file (File) or a stream still being
// filled (Open), never both (a HEAD may carry neither).
type BlobContent struct {
	Digest  string
	Size    int64 // -1 when unknown
	ModTime time.Time
	// File is the stored blob; the registry serves it with http.ServeContent (ranges, ETag).
	File io.ReadSeekCloser
	// Open returns a reader from offset that follows a fill in progress. The reader owns the
	// verification: it never returns the blob's last byte before the blob's digest is verified,
	// and fails (never a clean io.EOF) if the fill fails; the registry copies it as it comes.
	Open func(ctx context.Context, offset int64) io.ReadCloser
}
