package local

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// Image is one version of a repository as the database and storage hold it: what an ordinary
// distribution serves, and what a pull-through image serves without asking its upstream.
type Image struct {
	s       *Store
	name    string
	repoID  string
	version int64
	latest  bool // the latest version, whichever it is when asked (Store.Latest)
	pinned  bool // served by a distribution fixed to the version (Store.Pinned)
}

var _ oci.Image = (*Image)(nil)

// Name is the name the image is served under.
func (img *Image) Name() string { return img.name }

// present restricts a query joined with repository_contents to the image's version. The
// latest version is the content no version removed: a version is created in one transaction,
// so that is the latest number's content without asking for the number.
func (img *Image) present(q *gorm.DB) *gorm.DB {
	if img.latest {
		return q.Where("repository_contents.repository_id = ? AND repository_contents.version_removed IS NULL", img.repoID)
	}
	return models.PresentIn(q, img.repoID, img.version)
}

// Tags lists the names of the tags present in the version, sorted.
func (img *Image) Tags(ctx context.Context) ([]string, error) {
	var names []string
	err := img.present(img.s.db.WithContext(ctx).Model(&models.Tag{}).
		Joins("JOIN repository_contents ON repository_contents.content_id = tags.id")).
		Distinct("tags.name").Order("tags.name").Pluck("tags.name", &names).Error
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", img.name, err)
	}
	return names, nil
}

// manifestRow finds the manifest a tag present in the version points at, or the manifest with
// a digest present in the version; oci.ErrManifestUnknown when there is none.
func (img *Image) manifestRow(ctx context.Context, ref string) (*models.Manifest, error) {
	db := img.s.db.WithContext(ctx)
	var q *gorm.DB
	if oci.IsDigest(ref) {
		q = img.present(db.Model(&models.Manifest{}).
			Joins("JOIN repository_contents ON repository_contents.content_id = manifests.id")).
			Where("manifests.digest = ?", ref)
	} else {
		q = img.present(db.Model(&models.Manifest{}).
			Joins("JOIN tags ON tags.tagged_manifest_id = manifests.id").
			Joins("JOIN repository_contents ON repository_contents.content_id = tags.id")).
			Where("tags.name = ?", ref)
	}
	var row models.Manifest
	err := q.Select("manifests.id", "manifests.digest", "manifests.media_type", "manifests.schema_version").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, oci.ErrManifestUnknown.WithDetail("reference", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s of %s: %w", ref, img.name, err)
	}
	return &row, nil
}

// TagDigest returns the digest of the manifest tag points at in the version, or
// oci.ErrManifestUnknown.
func (img *Image) TagDigest(ctx context.Context, tag string) (string, error) {
	row, err := img.manifestRow(ctx, tag)
	if err != nil {
		return "", err
	}
	return row.Digest, nil
}

// Manifest returns the manifest a tag present in the version points at, or the manifest with
// a digest present in the version, with its bytes from storage as they are (a tag's bytes are
// not checked against the digest: the registry checks a digest reference).
func (img *Image) Manifest(ctx context.Context, ref string) (*oci.Manifest, error) {
	row, err := img.manifestRow(ctx, ref)
	if err != nil {
		return nil, err
	}
	raw, err := img.s.readManifest(ctx, row.Digest)
	if err != nil {
		var nf *storage.PathNotFoundError
		if errors.As(err, &nf) {
			img.s.log.Warn("manifest missing from storage", "repo", img.name, "digest", row.Digest)
			return nil, oci.ErrManifestUnknown.WithDetail("reference", ref)
		}
		return nil, err
	}
	return &oci.Manifest{Raw: raw, Digest: row.Digest, MediaType: row.MediaType, SchemaVersion: row.SchemaVersion}, nil
}

// Blob returns the blob with digest when the version holds it (as a blob, or as the config or
// a layer of a manifest it holds) or the repository holds it pending (models.PendingBlob):
// from storage when storage has its bytes, otherwise through the Store's RemoteBlobs when the
// version holds the blob as content of its own (what an on_demand or streamed sync recorded:
// a manifest can list any digest, and must not make the content app fetch one through another
// repository's remote); otherwise BLOB_UNKNOWN.
// A stored blob is a File whenever the driver can open one, for HEAD too, so that HEAD and GET
// answer the same headers.
func (img *Image) Blob(ctx context.Context, digest string, head bool) (*oci.BlobContent, error) {
	unknown := oci.ErrBlobUnknown.WithDetail("digest", digest)
	db := img.s.db.WithContext(ctx)
	var blob models.Blob
	err := db.Select("id").Take(&blob, "digest = ?", digest).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", digest, img.name, err)
	}
	var hits []string
	err = img.present(db.Model(&models.RepositoryContent{})).
		Where("(repository_contents.content_id = ? OR repository_contents.content_id IN (?) OR repository_contents.content_id IN (?))",
			blob.ID,
			img.s.db.Model(&models.Manifest{}).Select("id").Where("config_blob_id = ?", blob.ID),
			img.s.db.Model(&models.ManifestBlob{}).Select("manifest_id").Where("blob_id = ?", blob.ID)).
		Limit(1).Pluck("repository_contents.content_id", &hits).Error
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", digest, img.name, err)
	}
	if len(hits) == 0 {
		// A blob pushed to the repository that no version holds yet (Pulp serves its
		// pending_blobs too), but not through a distribution pinned to a version.
		if img.pinned {
			return nil, unknown
		}
		id, err := models.PendingBlobID(db, img.repoID, digest)
		if err != nil {
			return nil, fmt.Errorf("blob %s of %s: %w", digest, img.name, err)
		}
		if id == "" {
			return nil, unknown
		}
	}
	if _, err := storage.BlobPath(digest); err != nil {
		return nil, unknown
	}
	bc, err := img.s.Blob(ctx, digest)
	var nf *storage.PathNotFoundError
	if !errors.As(err, &nf) {
		return bc, err
	}
	if img.s.remote != nil {
		own, err := img.HasBlob(ctx, digest)
		if err != nil {
			return nil, err
		}
		if own {
			return img.s.remote.Blob(ctx, digest, head)
		}
	}
	img.s.log.Warn("blob missing from storage", "repo", img.name, "digest", digest)
	return nil, unknown
}

// HasManifest reports whether the version holds the manifest digest as content of its own.
func (img *Image) HasManifest(ctx context.Context, digest string) (bool, error) {
	var n int64
	err := img.present(img.s.db.WithContext(ctx).Model(&models.Manifest{}).
		Joins("JOIN repository_contents ON repository_contents.content_id = manifests.id")).
		Where("manifests.digest = ?", digest).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("manifest %s of %s: %w", digest, img.name, err)
	}
	return n > 0, nil
}

// HasBlob reports whether the version holds the blob digest as content of its own. Unlike
// Blob, a blob that only a manifest of the version lists does not count: a pull-through image
// grants access to a stored blob on this answer, and a manifest can list any digest.
func (img *Image) HasBlob(ctx context.Context, digest string) (bool, error) {
	var n int64
	err := img.present(img.s.db.WithContext(ctx).Model(&models.Blob{}).
		Joins("JOIN repository_contents ON repository_contents.content_id = blobs.id")).
		Where("blobs.digest = ?", digest).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("blob %s of %s: %w", digest, img.name, err)
	}
	return n > 0, nil
}
