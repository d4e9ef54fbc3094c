package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// referrersIndex is the answer of the referrers API: an OCI image index of descriptors.
type referrersIndex struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	Manifests     []oci.Descriptor `json:"manifests"`
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>: an OCI index of the manifests of
// the repository's served version whose subject is digest, filtered by ?artifactType= (said
// by OCI-Filters-Applied). Names the pull-through cache serves, and names nothing is
// distributed at yet, have no referrers (an empty index; nothing is created).
func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, rt route, c caller) {
	if !oci.ValidName(rt.name) {
		r.writeError(w, req, oci.ErrNameInvalid.WithDetail("name", rt.name))
		return
	}
	if !oci.ValidDigest(rt.ref) {
		r.writeError(w, req, oci.ErrDigestInvalid.WithDetail("digest", rt.ref))
		return
	}
	ctx := req.Context()
	t, err := r.resolve(ctx, rt.name)
	if errors.Is(err, oci.ErrNameUnknown) {
		// Nothing is distributed at the name yet (the caller may pull it: permit checked a
		// token's scope): no manifest refers to anything in it.
		t, err = nil, nil
	} else if err == nil {
		err = authorize(c, t, rt.name)
		if errors.Is(err, oci.ErrUnauthorized) && r.cfg.Tokens != nil {
			err = errInsufficientScope
		}
	}
	if err != nil {
		r.writeError(w, req, detailed(err, oci.ErrNameUnknown, "name", rt.name))
		return
	}
	artifactType := req.URL.Query().Get("artifactType")
	idx := referrersIndex{SchemaVersion: 2, MediaType: oci.MediaTypeOCIIndex, Manifests: []oci.Descriptor{}}
	if t != nil && t.kind == targetLocal {
		ms, err := models.Referrers(r.cfg.DB.WithContext(ctx), t.repoID, t.version, rt.ref, artifactType)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		for _, m := range ms {
			d := oci.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
			if m.ArtifactType != nil {
				d.ArtifactType = *m.ArtifactType
			}
			var ann map[string]string
			if json.Unmarshal(m.Annotations, &ann) == nil && len(ann) > 0 {
				d.Annotations = ann
			}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	body, _ := json.Marshal(idx)
	h := w.Header()
	h.Set("Content-Type", oci.MediaTypeOCIIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if artifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
