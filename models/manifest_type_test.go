package models_test

import (
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

func TestClassifyImage(t *testing.T) {
	const oci, docker = models.MediaTypeOCIManifest, models.MediaTypeDockerManifest
	cfg := func(mt string) string { return `{"config": {"mediaType": "` + mt + `"}, "layers": []}` }
	cases := []struct {
		name, mediaType, raw, annotations, labels string
		want                                      string // "" for no type
		bootable, flatpak                         bool
	}{
		{"docker image", docker, cfg("application/vnd.docker.container.image.v1+json"), "", "", "image", false, false},
		{"oci image", oci, cfg("application/vnd.oci.image.config.v1+json"), "", "", "image", false, false},
		{"schema 1", models.MediaTypeDockerSchema1, `{"fsLayers": []}`, "", "", "image", false, false},
		{"bootable by annotation", oci, cfg("application/vnd.oci.image.config.v1+json"), `{"containers.bootc": "1"}`, "", "bootable", true, false},
		{"bootable by label", docker, cfg("application/vnd.docker.container.image.v1+json"), "", `{"containers.bootc": "1"}`, "bootable", true, false},
		{"bootc not 1", oci, cfg("application/vnd.oci.image.config.v1+json"), `{"containers.bootc": "0"}`, "", "image", false, false},
		{"flatpak", oci, cfg("application/vnd.oci.image.config.v1+json"), "", `{"org.flatpak.ref": "app/x"}`, "flatpak", false, true},
		{"helm", oci, cfg("application/vnd.cncf.helm.config.v1+json"), "", "", "helm", false, false},
		{"cosign signature", oci, `{"config": {"mediaType": "application/vnd.oci.image.config.v1+json"}, "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}]}`, "", "", "cosign_signature", false, false},
		{"cosign sbom", oci, `{"config": {"mediaType": "application/vnd.oci.image.config.v1+json"}, "layers": [{"mediaType": "text/spdx+json"}]}`, "", "", "cosign_sbom", false, false},
		{"artifact by artifactType", oci, `{"artifactType": "application/x-thing", "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}}`, "", "", "artifact", false, false},
		{"artifact by empty config", oci, cfg("application/vnd.oci.empty.v1+json"), "", "", "artifact", false, false},
		{"artifact by unknown config", oci, cfg("application/x-thing"), "", "", "artifact", false, false},
		{"docker with unknown config", docker, cfg("application/x-thing"), "", "", "image", false, false},
	}
	for _, c := range cases {
		mf := &models.Manifest{MediaType: c.mediaType}
		if c.annotations != "" {
			mf.Annotations = models.JSON(c.annotations)
		}
		if c.labels != "" {
			mf.Labels = models.JSON(c.labels)
		}
		models.ClassifyImage(mf, []byte(c.raw))
		got := ""
		if mf.Type != nil {
			got = *mf.Type
		}
		if got != c.want || mf.IsBootable != c.bootable || mf.IsFlatpak != c.flatpak {
			t.Errorf("%s: type %q bootable %v flatpak %v, want %q %v %v", c.name, got, mf.IsBootable, mf.IsFlatpak, c.want, c.bootable, c.flatpak)
		}
	}
}

func TestClassifyIndex(t *testing.T) {
	for _, c := range []struct {
		listed            []string
		bootable, flatpak bool
	}{
		{[]string{"image", "image"}, false, false},
		{[]string{"image", "bootable"}, true, false},
		{[]string{"flatpak"}, false, true},
		{nil, false, false},
	} {
		mf := &models.Manifest{MediaType: models.MediaTypeOCIIndex}
		models.ClassifyIndex(mf, c.listed)
		if mf.Type == nil || *mf.Type != "index" || mf.IsBootable != c.bootable || mf.IsFlatpak != c.flatpak {
			t.Errorf("%v: %v %v %v", c.listed, mf.Type, mf.IsBootable, mf.IsFlatpak)
		}
	}
}
