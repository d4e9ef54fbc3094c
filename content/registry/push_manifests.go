package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// pushableTypes are the manifest media types a push may store: schema 1 is refused, as Pulp
// refuses it.
var pushableTypes = []string{oci.MediaTypeDockerManifest, oci.MediaTypeDockerManifestList,
	oci.MediaTypeOCIManifest, oci.MediaTypeOCIIndex}

// putManifest answers PUT /v2/<name>/manifests/<tag or digest>: the manifest is validated
// (known media type, at most oci.MaxManifestSize, every blob and listed manifest it names
// stored, its digest the one pushed to), stored byte for byte, recorded as content, and added
// with its tag to a new version of the repository, which is created on a first push.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	byDigest := oci.IsDigest(rt.ref)
	switch {
	case byDigest && !oci.ValidDigest(rt.ref):
		return oci.ErrDigestInvalid.WithDetail("digest", rt.ref)
	case !byDigest && !oci.ValidTag(rt.ref):
		return &oci.Error{Status: http.StatusBadRequest, Code: "TAG_INVALID", Message: "manifest tag did not match URI",
			Detail: map[string]any{"tag": rt.ref}}
	case r.cfg.Recorder == nil:
		return unsupported(w, rt)
	}
	m, err := readPushedManifest(req)
	if err != nil {
		return err
	}
	if byDigest {
		if !oci.ManifestHasDigest(m.Raw, rt.ref) {
			return oci.ErrDigestInvalid.WithDetail("digest", rt.ref)
		}
		m.Digest = rt.ref
	}
	target, err := r.pushTarget(ctx, rt.name, true)
	if err != nil {
		return err
	}
	if err := r.checkReferences(ctx, m, target.Repository.ID); err != nil {
		return err
	}
	if err := r.store.PutManifest(ctx, m); err != nil {
		return err
	}
	err = r.changeRepository(ctx, taskAddAndRemove, rt.name, target.Repository, func(tx *gorm.DB, repo *models.Repository) (*models.RepositoryVersion, error) {
		id, err := r.cfg.Recorder.RecordManifest(ctx, tx, m.Digest)
		if err != nil {
			return nil, err
		}
		ids := []string{id}
		if !byDigest {
			tag, err := models.GetOrCreateTag(tx, rt.ref, id)
			if err != nil {
				return nil, err
			}
			ids = append(ids, tag.ID)
		}
		return models.RecursiveAdd(tx, repo, ids)
	})
	if err != nil {
		return fmt.Errorf("record pushed manifest %s in %s: %w", m.Digest, rt.name, err)
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+m.Digest)
	h.Set(headerContentDigest, m.Digest)
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readPushedManifest reads and parses the body of a manifest push: at most
// oci.MaxManifestSize bytes (413 beyond), of schemaVersion 2, of a media type that may be
// pushed, whose
// Content-Type, when it names a manifest type, agrees with the manifest's own mediaType.
func readPushedManifest(req *http.Request) (*oci.Manifest, error) {
	if req.ContentLength > oci.MaxManifestSize {
		return nil, oci.ErrManifestTooLarge
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, oci.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read pushed manifest: %w", err)
	}
	if len(raw) > oci.MaxManifestSize {
		return nil, oci.ErrManifestTooLarge
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	m, err := oci.ParseManifest(raw, ct)
	if err != nil {
		var e *oci.Error
		if errors.As(err, &e) {
			return nil, e.WithDetail("reason", strings.TrimPrefix(err.Error(), e.Error()+": "))
		}
		return nil, err
	}
	if isSchema1(m.MediaType) || isSchema1(ct) || m.SchemaVersion == 1 {
		return nil, oci.ErrManifestInvalid.WithDetail("reason", "Pushing manifests of the version V1 is not supported")
	}
	// The image and distribution specs: schemaVersion MUST be 2 (a body without it, or a
	// schema 1 body sent as an index, is not one of the manifests pushed here).
	if m.SchemaVersion != 2 {
		return nil, oci.ErrManifestInvalid.WithDetail("reason", fmt.Sprintf("schemaVersion is %d, not 2", m.SchemaVersion))
	}
	known := false
	for _, t := range pushableTypes {
		known = known || t == m.MediaType
	}
	if !known {
		return nil, oci.ErrManifestInvalid.WithDetail("reason", fmt.Sprintf("unknown media type %q", m.MediaType))
	}
	if oci.IsManifestMediaType(ct) && ct != m.MediaType {
		return nil, oci.ErrManifestInvalid.WithDetail("reason", fmt.Sprintf("Content-Type %q is not the manifest's media type %q", ct, m.MediaType))
	}
	if !oci.IsIndex(m.MediaType) && m.Config == nil {
		return nil, oci.ErrManifestInvalid.WithDetail("reason", "an image manifest needs a config")
	}
	return m, nil
}

// checkReferences checks that what m names is stored and belongs to repository repoID: an
// image manifest's config and layers (foreign layers are not stored anywhere) in its latest
// version or pending (uploaded or mounted to it), an index's listed manifests in its latest
// version. A digest the pusher has not brought to this repository is unknown here, even when
// another repository holds it: naming it must not copy that repository's content in.
func (r *Registry) checkReferences(ctx context.Context, m *oci.Manifest, repoID string) error {
	db := r.cfg.DB.WithContext(ctx)
	if oci.IsIndex(m.MediaType) {
		for _, d := range m.Manifests {
			ok, err := models.RepositoryHoldsManifest(db, repoID, d.Digest)
			if err != nil {
				return err
			}
			if !ok || !r.stored(ctx, d.Digest) {
				return oci.ErrManifestInvalid.WithDetail("reason", "listed manifest "+d.Digest+" is not in this repository")
			}
		}
		return nil
	}
	for _, d := range append([]oci.Descriptor{*m.Config}, m.Layers...) {
		if oci.Foreign(d.MediaType) {
			continue
		}
		ok, err := models.RepositoryHoldsBlob(db, repoID, d.Digest)
		if err != nil {
			return err
		}
		if !ok || !r.stored(ctx, d.Digest) {
			return oci.ErrManifestBlobUnknown.WithDetail("digest", d.Digest)
		}
	}
	return nil
}

// stored reports whether storage holds the blob or manifest digest.
func (r *Registry) stored(ctx context.Context, digest string) bool {
	p, err := storage.BlobPath(digest)
	if err != nil {
		return false
	}
	_, err = r.cfg.Storage.Stat(ctx, p)
	return err == nil
}

// errDeleteByDigest answers deletes by tag, as Pulp 2.29 does. (Pulp refuses every reference
// but a sha256 digest so; pulpgo stores sha512 content too, and deletes it as sha256 content.)
func errDeleteByDigest(what string) error {
	return oci.ErrInvalidRequest.WithDetail("message", "A "+what+" can only be deleted by digest.")
}

// deleteManifest answers DELETE /v2/<name>/manifests/<digest>: the manifest and the tags
// naming it leave the repository in a new version (202); their content and bytes stay until an
// orphan cleanup. A tag is refused with INVALID_REQUEST, as Pulp 2.29 refuses it.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	if !oci.IsDigest(rt.ref) {
		return errDeleteByDigest("manifest")
	}
	if !oci.ValidDigest(rt.ref) {
		return oci.ErrDigestInvalid.WithDetail("digest", rt.ref)
	}
	target, err := r.pushTarget(req.Context(), rt.name, false)
	if err != nil {
		return err
	}
	err = r.changeRepository(req.Context(), taskRecursiveRemove, rt.name, target.Repository, func(tx *gorm.DB, repo *models.Repository) (*models.RepositoryVersion, error) {
		mf, err := models.ManifestInVersion(tx, repo, repo.LatestNumber, rt.ref)
		if models.IsUnavailable(err) {
			return nil, err // the database failed: 503, not an unknown manifest
		}
		if err != nil {
			return nil, oci.ErrManifestUnknown.WithDetail("reference", rt.ref)
		}
		tags, err := models.TagIDsOfManifest(tx, repo, repo.LatestNumber, mf.ID)
		if err != nil {
			return nil, err
		}
		return models.RecursiveRemove(tx, repo, append([]string{mf.ID}, tags...))
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteBlob answers DELETE /v2/<name>/blobs/<digest>, as Pulp 2.29: the blob leaves the
// repository in a new version (202), whatever manifests still name it; a blob the latest
// version does not hold but the repository holds pending stops being pending (202); any other
// blob is BLOB_UNKNOWN.
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	if !oci.IsDigest(rt.ref) {
		return errDeleteByDigest("blob")
	}
	if !oci.ValidDigest(rt.ref) {
		return oci.ErrDigestInvalid.WithDetail("digest", rt.ref)
	}
	target, err := r.pushTarget(req.Context(), rt.name, false)
	if err != nil {
		return err
	}
	err = r.changeRepository(req.Context(), taskAddAndRemove, rt.name, target.Repository, func(tx *gorm.DB, repo *models.Repository) (*models.RepositoryVersion, error) {
		id, err := models.BlobIDInVersion(tx, repo.ID, repo.LatestNumber, rt.ref)
		if err != nil {
			return nil, err
		}
		if id != "" {
			return models.NewVersion(tx, repo, nil, []models.ContentRef{{Type: models.KindBlob.PulpType, ID: id}})
		}
		if id, err = models.PendingBlobID(tx, repo.ID, rt.ref); err != nil {
			return nil, err
		}
		if id == "" {
			return nil, oci.ErrBlobUnknown.WithDetail("digest", rt.ref)
		}
		_, err = models.RemovePendingBlob(tx, repo.ID, id)
		return nil, err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
