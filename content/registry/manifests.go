package registry

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/pulpgo/pulpgo/content/oci"
)

// serveManifest answers GET and HEAD /v2/<name>/manifests/<ref>: the manifest byte for byte,
// with its media type, length and digest. Tag references go through Pulp's Accept
// negotiation (no conversion, ever); digest references are served only if the bytes hash to
// the digest asked for.
func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, img Image, ref string) {
	m, err := img.Manifest(req.Context(), ref)
	if err != nil {
		r.writeError(w, req, detailed(err, oci.ErrManifestUnknown, "reference", ref))
		return
	}
	digest := m.Digest
	if oci.IsDigest(ref) {
		if !hashesTo(m, ref) {
			r.log.Warn("manifest bytes do not match their digest", "repo", img.Name(), "digest", ref)
			r.writeError(w, req, oci.ErrManifestUnknown.WithDetail("reference", ref))
			return
		}
		digest = ref
	} else if !acceptable(req.Header.Values("Accept"), m.MediaType) {
		r.writeError(w, req, oci.ErrManifestUnknown.WithDetail("reference", ref))
		return
	}
	if digest == "" {
		digest = oci.Digest(m.Raw)
	}
	h := w.Header()
	h.Set("Content-Type", manifestContentType(m.MediaType))
	h.Set("Content-Length", strconv.Itoa(len(m.Raw)))
	h.Set(headerContentDigest, digest)
	h.Set("ETag", `"`+digest+`"`)
	w.WriteHeader(http.StatusOK)
	if r.cfg.Pulls != nil {
		r.cfg.Pulls.Note(digest)
	}
	if req.Method != http.MethodHead {
		_, _ = w.Write(m.Raw)
	}
}

// isSchema1 reports whether mediaType is a Docker schema 1 manifest, signed or not.
func isSchema1(mediaType string) bool {
	return mediaType == oci.MediaTypeDockerSchema1 || mediaType == oci.MediaTypeDockerSchema1JWS
}

// manifestContentType is the Content-Type a manifest of mediaType is served with: its media
// type, except that schema 1 is announced as signed (prettyjws), as Pulp does.
func manifestContentType(mediaType string) string {
	if mediaType == oci.MediaTypeDockerSchema1 {
		return oci.MediaTypeDockerSchema1JWS
	}
	return mediaType
}

// acceptable applies Pulp's Accept negotiation to a manifest of mediaType: the Accept
// header(s) are split on "," and stripped of parameters; an empty list, "*/*", the media type
// itself or a schema 1 manifest pass.
func acceptable(accept []string, mediaType string) bool {
	if isSchema1(mediaType) {
		return true
	}
	empty := true
	for _, h := range accept {
		for _, t := range strings.Split(h, ",") {
			t, _, _ = strings.Cut(t, ";")
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if t == "*/*" || t == mediaType {
				return true
			}
			empty = false
		}
	}
	return empty
}

// hashesTo reports whether the bytes of m have digest (sha256 or sha512), as the server
// computes it (oci.ManifestDigest: for signed schema 1, the digest of the payload).
func hashesTo(m *oci.Manifest, digest string) bool {
	return oci.ManifestHasDigest(m.Raw, digest)
}
