package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// maxManifestSize bounds the manifest bytes read from storage into memory.
const maxManifestSize = oci.MaxManifestSize

// localImage serves one version of a repository from the database and blob storage: the
// content of an ordinary distribution.
type localImage struct {
	db      *gorm.DB
	store   storage.Driver
	log     *slog.Logger
	name    string
	repoID  string
	version int64
}

var _ Image = (*localImage)(nil)

// Name is the distribution's base path.
func (img *localImage) Name() string { return img.name }

// present restricts a query joined with repository_contents to the served version.
func (img *localImage) present(q *gorm.DB) *gorm.DB {
	return models.PresentIn(q, img.repoID, img.version)
}

// Tags lists the names of the tags present in the version, sorted.
func (img *localImage) Tags(ctx context.Context) ([]string, error) {
	var names []string
	err := img.present(img.db.WithContext(ctx).Model(&models.Tag{}).
		Joins("JOIN repository_contents ON repository_contents.content_id = tags.id")).
		Distinct("tags.name").Order("tags.name").Pluck("tags.name", &names).Error
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", img.name, err)
	}
	return names, nil
}

// Manifest returns the manifest a tag present in the version points at, or the manifest with
// a digest present in the version, with its bytes from storage.
func (img *localImage) Manifest(ctx context.Context, ref string) (*oci.Manifest, error) {
	db := img.db.WithContext(ctx)
	var row models.Manifest
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
	err := q.Select("manifests.id", "manifests.digest", "manifests.media_type", "manifests.schema_version").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, oci.ErrManifestUnknown.WithDetail("reference", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s of %s: %w", ref, img.name, err)
	}
	raw, err := img.readManifest(ctx, row.Digest)
	if err != nil {
		var nf *storage.PathNotFoundError
		if errors.As(err, &nf) {
			img.log.Warn("manifest missing from storage", "repo", img.name, "digest", row.Digest)
			return nil, oci.ErrManifestUnknown.WithDetail("reference", ref)
		}
		return nil, err
	}
	return &oci.Manifest{Raw: raw, Digest: row.Digest, MediaType: row.MediaType, SchemaVersion: row.SchemaVersion}, nil
}

// readManifest reads the stored bytes of the manifest with digest, at most maxManifestSize.
func (img *localImage) readManifest(ctx context.Context, digest string) ([]byte, error) {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	rc, err := img.store.Reader(ctx, p, 0)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", digest, err)
	}
	defer func() { _ = rc.Close() }()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", digest, err)
	}
	if len(raw) > maxManifestSize {
		return nil, fmt.Errorf("read manifest %s: larger than %d bytes", digest, maxManifestSize)
	}
	return raw, nil
}

// Blob returns the stored blob with digest when the version holds it (as a blob, or as the
// config or a layer of a manifest it holds) and storage has its bytes; otherwise BLOB_UNKNOWN.
// A stored blob is always a File, for HEAD too, so that HEAD and GET answer the same headers.
func (img *localImage) Blob(ctx context.Context, digest string, _ bool) (*BlobContent, error) {
	unknown := oci.ErrBlobUnknown.WithDetail("digest", digest)
	db := img.db.WithContext(ctx)
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
			img.db.Model(&models.Manifest{}).Select("id").Where("config_blob_id = ?", blob.ID),
			img.db.Model(&models.ManifestBlob{}).Select("manifest_id").Where("blob_id = ?", blob.ID)).
		Limit(1).Pluck("repository_contents.content_id", &hits).Error
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", digest, img.name, err)
	}
	if len(hits) == 0 {
		return nil, unknown
	}
	p, err := storage.BlobPath(digest)
	if err != nil {
		return nil, unknown
	}
	bc, err := openStored(ctx, img.store, p, digest)
	var nf *storage.PathNotFoundError
	if errors.As(err, &nf) {
		img.log.Warn("blob missing from storage", "repo", img.name, "digest", digest)
		return nil, unknown
	}
	return bc, err
}

// openStored opens the stored object at p: as a File when the driver can seek (Opener), or as
// a stream from an offset otherwise.
func openStored(ctx context.Context, store storage.Driver, p, digest string) (*BlobContent, error) {
	if o, ok := store.(storage.Opener); ok {
		f, info, err := o.Open(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("open blob %s: %w", digest, err)
		}
		return &BlobContent{Digest: digest, Size: info.Size, ModTime: info.ModTime, File: f}, nil
	}
	info, err := store.Stat(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("stat blob %s: %w", digest, err)
	}
	open := func(ctx context.Context, offset int64) io.ReadCloser {
		rc, err := store.Reader(ctx, p, offset)
		if err != nil {
			return errReader{fmt.Errorf("read blob %s: %w", digest, err)}
		}
		return rc
	}
	return &BlobContent{Digest: digest, Size: info.Size, ModTime: info.ModTime, Open: open}, nil
}

// errReader is a reader that fails with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
func (r errReader) Close() error             { return nil }
