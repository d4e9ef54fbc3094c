package registry

import (
	"context"
	"errors"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

// mount returns the id of the blob digest when it can be mounted from repository from for
// caller c, touching it when so: the caller may pull from (its token, if it sent one, grants
// pull on it, and the distribution is public, in the caller's namespace, or the caller is a
// superuser), from's served version holds the
// blob or from's repository holds it pending (Pulp mounts only the former; pulpgo serves a
// pending blob to whoever may pull from, so it mounts it too), and storage has its bytes.
// Anything else is "" and no error: the client then uploads the blob.
func (r *Registry) mount(ctx context.Context, c caller, from, digest string) (string, error) {
	if !oci.ValidName(from) || !oci.ValidDigest(digest) {
		return "", nil
	}
	t, err := r.resolve(ctx, from)
	if errors.Is(err, oci.ErrNameUnknown) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	// The token's grant is not enough alone: from may have become private since it was issued.
	if c.claims != nil && !c.admin && !token.Allows(c.claims.Access, "repository", from, "pull") {
		return "", nil
	}
	if authorize(c, t, from) != nil {
		return "", nil
	}
	if t.kind == targetPullThrough {
		return "", nil
	}
	if t.kind == targetChild {
		if t, err = r.local(ctx, t.dist); err != nil {
			return "", nil
		}
	}
	db := r.cfg.DB.WithContext(ctx)
	id, err := models.BlobIDInVersion(db, t.repoID, t.version, digest)
	if err == nil && id == "" {
		id, err = models.PendingBlobID(db, t.repoID, digest)
	}
	if err != nil || id == "" {
		return "", err
	}
	path, err := storage.BlobPath(digest)
	if err != nil {
		return "", nil
	}
	if _, err := r.cfg.Storage.Stat(ctx, path); err != nil {
		return "", nil
	}
	if err := models.TouchDigest(db, digest); err != nil {
		return "", err
	}
	r.log.Info("blob mounted", "from", from, "digest", digest)
	return id, nil
}
