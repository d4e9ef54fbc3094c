package registry

import (
	"context"
	"io"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// Image is one repository as the registry serves it: the content of an ordinary
// distribution, or an image behind a pull-through distribution.
type Image interface {
	// Name is the repository name the client asked for.
	Name() string
	// Tags lists the tags served, sorted.
	Tags(ctx context.Context) ([]string, error)
	// Manifest returns the manifest for a tag or digest, byte for byte; errors are *oci.Error
	// (oci.ErrManifestUnknown...) or upstream failures mapped to them.
	Manifest(ctx context.Context, ref string) (*oci.Manifest, error)
	// Blob returns the blob with digest. head is true for HEAD requests, where a cache may
	// answer from the upstream's size without fetching the bytes.
	Blob(ctx context.Context, digest string, head bool) (*BlobContent, error)
}

// BlobContent is a blob ready to serve: either a stored file (File) or a stream still being
// filled (Open), never both.
type BlobContent struct {
	Digest  string
	Size    int64 // -1 when unknown
	ModTime time.Time
	// File is the stored blob; the registry serves it with http.ServeContent (ranges, ETag).
	File io.ReadSeekCloser
	// Open returns a reader from offset that follows a fill in progress; it fails (never a clean
	// io.EOF) if the fill fails.
	Open func(ctx context.Context, offset int64) io.ReadCloser
}

// PullThrough resolves names below pull-through distributions (content/pullthrough.Cache).
type PullThrough interface {
	// Image returns the image upstreamName behind pull-through distribution pt, creating its
	// repository, remote and distribution on first use. It returns oci.ErrNameUnknown when
	// the remote's includes/excludes reject the name or the objects cannot be created.
	Image(ctx context.Context, pt *models.Distribution, upstreamName string) (Image, error)
	// Child returns the image served by child, a distribution the cache created earlier.
	Child(ctx context.Context, child *models.Distribution) (Image, error)
}
