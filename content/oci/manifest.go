package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Media types of manifests and configs.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// ManifestMediaTypes are the manifest types the registry serves, in the Accept order used
// towards upstreams.
var ManifestMediaTypes = []string{MediaTypeOCIIndex, MediaTypeDockerManifestList, MediaTypeOCIManifest,
	MediaTypeDockerManifest, MediaTypeDockerSchema1JWS, MediaTypeDockerSchema1}

// IsIndex reports whether mediaType lists other manifests.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifestMediaType reports whether mediaType is a known manifest type.
func IsManifestMediaType(mediaType string) bool {
	for _, m := range ManifestMediaTypes {
		if m == mediaType {
			return true
		}
	}
	return false
}

// Descriptor points at a blob or manifest.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// ArtifactType is set in the descriptors of a referrers list.
	ArtifactType string `json:"artifactType,omitempty"`
}

// Platform is an index entry's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// Manifest is a parsed manifest or index, with its raw bytes (served byte for byte).
type Manifest struct {
	Raw []byte
	// Digest is the sha256 digest computed from Raw by ManifestDigest (for a signed schema 1
	// manifest, of its payload), never one an upstream claimed.
	Digest    string
	MediaType string

	SchemaVersion int64
	Config        *Descriptor
	Layers        []Descriptor
	Manifests     []Descriptor
	// Annotations are the manifest's annotations, nil when their JSON is larger than
	// MaxAnnotationsSize.
	Annotations  map[string]string
	ArtifactType string
	// Subject is the manifest this one refers to (a signature's, an SBOM's image), nil if none.
	Subject *Descriptor
}

// MaxAnnotationsSize bounds the JSON of the annotations ParseManifest decodes: larger ones are
// left out of Manifest.Annotations (the raw bytes keep them), so that an upstream's huge
// annotations cost no second copy in memory, nor a database row.
const MaxAnnotationsSize = 64 << 10

// smallAnnotations decodes annotations of at most MaxAnnotationsSize bytes of JSON and skips
// larger ones without copying them.
type smallAnnotations map[string]string

func (a *smallAnnotations) UnmarshalJSON(b []byte) error {
	if len(b) > MaxAnnotationsSize {
		return nil
	}
	return json.Unmarshal(b, (*map[string]string)(a))
}

type rawManifest struct {
	SchemaVersion int64            `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	Config        *Descriptor      `json:"config"`
	Layers        []Descriptor     `json:"layers"`
	Manifests     []Descriptor     `json:"manifests"`
	Annotations   smallAnnotations `json:"annotations"`
	ArtifactType  string           `json:"artifactType"`
	Subject       *Descriptor      `json:"subject"`
	FSLayers      []struct {
		BlobSum string `json:"blobSum"`
	} `json:"fsLayers"`
}

// Digest returns the sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseManifest parses raw manifest bytes; contentType (the upstream's Content-Type, may be
// empty) decides the media type when the JSON does not say it. The Digest is computed from
// raw (ManifestDigest, sha256).
func ParseManifest(raw []byte, contentType string) (*Manifest, error) {
	var r rawManifest
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifestInvalid, err)
	}
	digest, err := ManifestDigest(raw, "sha256")
	if err != nil {
		return nil, err
	}
	m := &Manifest{Raw: raw, Digest: digest, SchemaVersion: r.SchemaVersion, Config: r.Config,
		Layers: r.Layers, Manifests: r.Manifests, Annotations: r.Annotations, ArtifactType: r.ArtifactType, Subject: r.Subject}
	switch {
	case r.MediaType != "":
		m.MediaType = r.MediaType
	case contentType == MediaTypeDockerSchema1JWS:
		m.MediaType = MediaTypeDockerSchema1
	case IsManifestMediaType(contentType):
		m.MediaType = contentType
	case r.Manifests != nil:
		m.MediaType = MediaTypeDockerManifestList
		for _, d := range r.Manifests {
			if d.MediaType == MediaTypeOCIManifest || d.MediaType == MediaTypeOCIIndex {
				m.MediaType = MediaTypeOCIIndex
			}
		}
	case r.Config != nil && r.Config.MediaType == MediaTypeDockerConfig:
		m.MediaType = MediaTypeDockerManifest
	case r.Config != nil:
		m.MediaType = MediaTypeOCIManifest
	default:
		m.MediaType = MediaTypeDockerSchema1
	}
	if m.MediaType == MediaTypeDockerSchema1 {
		for _, l := range r.FSLayers {
			m.Layers = append(m.Layers, Descriptor{Digest: l.BlobSum, Size: -1})
		}
	}
	for _, d := range append(append([]Descriptor{}, m.Layers...), m.Manifests...) {
		if !ValidDigest(d.Digest) {
			return nil, fmt.Errorf("%w: bad digest %q in manifest", ErrManifestInvalid, d.Digest)
		}
	}
	if m.Subject != nil && !ValidDigest(m.Subject.Digest) {
		return nil, fmt.Errorf("%w: bad subject digest %q", ErrManifestInvalid, m.Subject.Digest)
	}
	if m.Config != nil && !ValidDigest(m.Config.Digest) {
		return nil, fmt.Errorf("%w: bad config digest %q", ErrManifestInvalid, m.Config.Digest)
	}
	return m, nil
}

// ImageConfig is what the recording reads from a config blob.
type ImageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// Foreign reports whether a layer is foreign or non-distributable (never fetched nor stored).
func Foreign(mediaType string) bool {
	switch mediaType {
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}
