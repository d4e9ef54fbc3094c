package models

import (
	"encoding/json"
	"slices"
	"strings"
)

// Manifest types, pulp_container's MANIFEST_TYPE: what a manifest holds.
const (
	ManifestTypeArtifact                = "artifact"
	ManifestTypeBootable                = "bootable"
	ManifestTypeCosignAttestation       = "cosign_attestation"
	ManifestTypeCosignAttestationBundle = "cosign_attestation_bundle"
	ManifestTypeCosignSBOM              = "cosign_sbom"
	ManifestTypeCosignSignature         = "cosign_signature"
	ManifestTypeFlatpak                 = "flatpak"
	ManifestTypeHelm                    = "helm"
	ManifestTypeImage                   = "image"
	ManifestTypeIndex                   = "index"
	ManifestTypeUnknown                 = "unknown"
)

// knownMediaTypes are the values of pulp_container's MEDIA_TYPE: a config of another media
// type makes an OCI manifest an artifact.
var knownMediaTypes = []string{
	MediaTypeDockerSchema1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
	MediaTypeDockerManifest, MediaTypeDockerManifestList, "application/vnd.docker.container.image.v1+json",
	"application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	MediaTypeOCIManifest, MediaTypeOCIIndex, "application/vnd.oci.image.config.v1+json",
	"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", mediaTypeOCIEmptyJSON, mediaTypeHelmConfig,
	mediaTypeCosignBlob, mediaTypeCosignAttestation, mediaTypeCosignAttestationBundle,
}

const (
	mediaTypeOCIEmptyJSON            = "application/vnd.oci.empty.v1+json"
	mediaTypeHelmConfig              = "application/vnd.cncf.helm.config.v1+json"
	mediaTypeCosignBlob              = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaTypeCosignAttestation       = "application/vnd.dsse.envelope.v1+json"
	mediaTypeCosignAttestationBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// cosignType is the manifest type a layer of mediaType gives a cosign manifest, "" when the
// layer is not cosign's (pulp_container's COSIGN_MEDIA_TYPES and their mapping).
func cosignType(mediaType string) string {
	switch mediaType {
	case mediaTypeCosignBlob:
		return ManifestTypeCosignSignature
	case mediaTypeCosignAttestation:
		return ManifestTypeCosignAttestation
	case mediaTypeCosignAttestationBundle:
		return ManifestTypeCosignAttestationBundle
	}
	for _, f := range []string{"application/vnd.cyclonedx", "text/spdx"} {
		if mediaType == f || mediaType == f+"+xml" || mediaType == f+"+json" {
			return ManifestTypeCosignSBOM
		}
	}
	if mediaType == "application/vnd.syft+json" {
		return ManifestTypeCosignSBOM
	}
	return ""
}

// ClassifyImage sets the Type, IsBootable and IsFlatpak of the image manifest mf (not an
// index) from its bytes raw, its Annotations and its config's Labels, as pulp_container's
// init_manifest_nature: bootable, flatpak, helm, a cosign type, artifact, image, in that
// order; a manifest that is none of them keeps no type.
func ClassifyImage(mf *Manifest, raw []byte) {
	var doc struct {
		ArtifactType string `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	_ = json.Unmarshal(raw, &doc)
	var annotations, labels map[string]any
	_ = json.Unmarshal(mf.Annotations, &annotations)
	_ = json.Unmarshal(mf.Labels, &labels)
	set := func(typ string) { mf.Type = &typ }
	switch {
	case annotations["containers.bootc"] == "1" || labels["containers.bootc"] == "1":
		mf.IsBootable = true
		set(ManifestTypeBootable)
		return
	case labels["org.flatpak.ref"] != nil && labels["org.flatpak.ref"] != "":
		mf.IsFlatpak = true
		set(ManifestTypeFlatpak)
		return
	case doc.Config != nil && doc.Config.MediaType == mediaTypeHelmConfig:
		set(ManifestTypeHelm)
		return
	}
	for _, l := range doc.Layers {
		if typ := cosignType(l.MediaType); typ != "" {
			set(typ)
			return
		}
	}
	if mf.MediaType == MediaTypeOCIManifest && (doc.ArtifactType != "" ||
		(doc.Config != nil && (doc.Config.MediaType == mediaTypeOCIEmptyJSON || !slices.Contains(knownMediaTypes, doc.Config.MediaType)))) {
		set(ManifestTypeArtifact)
		return
	}
	if mf.MediaType == MediaTypeDockerManifest || mf.MediaType == MediaTypeOCIManifest ||
		strings.HasPrefix(mf.MediaType, "application/vnd.docker.distribution.manifest.v1+") {
		set(ManifestTypeImage)
	}
}

// ClassifyIndex sets the Type of the index mf to index, and IsBootable or IsFlatpak when one
// of the manifests it lists (listedTypes, their types) is bootable or a flatpak, as
// pulp_container's init_manifest_list_nature.
func ClassifyIndex(mf *Manifest, listedTypes []string) {
	typ := ManifestTypeIndex
	mf.Type = &typ
	for _, t := range listedTypes {
		switch t {
		case ManifestTypeBootable:
			mf.IsBootable = true
			return
		case ManifestTypeFlatpak:
			mf.IsFlatpak = true
			return
		}
	}
}
