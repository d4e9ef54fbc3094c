package registry

import (
	"context"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// Image is one repository as the registry serves it (see oci.Image; declared there so that
// the pull-through cache implements it without importing this package).
type Image = oci.Image

// BlobContent is a blob ready to serve (see oci.BlobContent).
type BlobContent = oci.BlobContent

// PullThrough resolves names below pull-through distributions (content/pullthrough.Cache).
type PullThrough interface {
	// Image returns the image upstreamName behind pull-through distribution pt, creating its
	// repository, remote and distribution on first use. It returns oci.ErrNameUnknown when
	// the remote's includes/excludes reject the name or the objects cannot be created.
	Image(ctx context.Context, pt *models.Distribution, upstreamName string) (oci.Image, error)
	// Child returns the image served by child, a distribution the cache created earlier.
	Child(ctx context.Context, child *models.Distribution) (oci.Image, error)
}
