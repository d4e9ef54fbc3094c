package registry

import (
	"context"
	"errors"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

// mount reports whether the blob digest can be mounted from repository from for caller c,
// touching it when so: the caller may pull from (its token grants pull on it, or the
// distribution is public, or the caller is the admin), from's served version holds the blob,
// and storage has its bytes. Anything else is no error: the client then uploads the blob.
func (r *Registry) mount(ctx context.Context, c caller, from, digest string) (bool, error) {
	if !oci.ValidName(from) || !oci.ValidDigest(digest) {
		return false, nil
	}
	t, err := r.resolve(ctx, from)
	if errors.Is(err, oci.ErrNameUnknown) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch {
	case c.admin:
	case c.claims != nil:
		if !token.Allows(c.claims.Access, "repository", from, "pull") {
			return false, nil
		}
	case t.private():
		return false, nil
	}
	if t.kind == targetPullThrough {
		return false, nil
	}
	if t.kind == targetChild {
		if t, err = r.local(ctx, t.dist); err != nil {
			return false, nil
		}
	}
	id, err := models.BlobIDInVersion(r.cfg.DB.WithContext(ctx), t.repoID, t.version, digest)
	if err != nil || id == "" {
		return false, err
	}
	path, err := storage.BlobPath(digest)
	if err != nil {
		return false, nil
	}
	if _, err := r.cfg.Storage.Stat(ctx, path); err != nil {
		return false, nil
	}
	if err := models.TouchDigest(r.cfg.DB.WithContext(ctx), digest); err != nil {
		return false, err
	}
	r.log.Info("blob mounted", "from", from, "digest", digest)
	return true, nil
}
