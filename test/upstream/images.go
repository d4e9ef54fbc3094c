package upstream

import (
	"archive/tar"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
)

// Manifest media types, as the registry stores and serves them.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
)

// MiB is a mebibyte, the unit of PushLarge's size.
const MiB = 1 << 20

// Image describes a pushed image as the registry serves it.
type Image struct {
	// Name is the repository, such as "library/busybox".
	Name string `json:"name"`
	// Tag is the tag it was pushed as; empty for an index's children.
	Tag string `json:"tag,omitempty"`
	// ManifestDigest is the digest of the manifest or index.
	ManifestDigest string `json:"digest"`
	// MediaType is the manifest's media type (MediaType... constants).
	MediaType string `json:"mediaType"`
	// Size is the manifest's length in bytes.
	Size int64 `json:"size"`
	// Platform is "os/arch" for a child of an index, else empty.
	Platform string `json:"platform,omitempty"`
	// Config is the image's config blob; nil for an index.
	Config *Blob `json:"config,omitempty"`
	// Layers are the image's layer blobs, in order; empty for an index.
	Layers []Blob `json:"layers,omitempty"`
	// Children are the images an index lists, in order.
	Children []Image `json:"children,omitempty"`
}

// Blob is a config or layer blob of an image.
type Blob struct {
	// Digest is the blob's digest, "sha256:<hex>".
	Digest string `json:"digest"`
	// Size is the blob's length in bytes.
	Size int64 `json:"size"`
	// MediaType is the blob's media type in the manifest.
	MediaType string `json:"mediaType"`
}

// Ref returns "name:tag".
func (im Image) Ref() string { return im.Name + ":" + im.Tag }

// Blobs returns the config and layer blobs of the image and of its
// children, each once: what a client fetches to pull all of it.
func (im Image) Blobs() []Blob {
	var out []Blob
	seen := map[string]bool{}
	var walk func(Image)
	walk = func(im Image) {
		all := im.Layers
		if im.Config != nil {
			all = append([]Blob{*im.Config}, all...)
		}
		for _, b := range all {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				out = append(out, b)
			}
		}
		for _, c := range im.Children {
			walk(c)
		}
	}
	walk(im)
	return out
}

// Child returns the child of an index for platform ("linux/arm64").
func (im Image) Child(platform string) (Image, bool) {
	for _, c := range im.Children {
		if c.Platform == platform {
			return c, true
		}
	}
	return Image{}, false
}

// PushSmall pushes a linux/amd64 busybox image as Docker schema 2, like
// Docker Hub's busybox: one layer holding /bin/busybox and /bin/sh -> busybox.
func (u *Upstream) PushSmall(ctx context.Context, name, tag string) (Image, error) {
	fi, err := os.Stat(u.opts.Busybox)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s (apt-get install -y busybox-static): %v", ErrMissingTool, u.opts.Busybox, err)
	}
	busybox := func(tw *tar.Writer) error {
		f, err := os.Open(u.opts.Busybox)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tarDir(tw, "bin"); err != nil {
			return err
		}
		if err := tarStream(tw, "bin/busybox", 0o755, fi.Size(), f); err != nil {
			return err
		}
		return tarSymlink(tw, "bin/sh", "busybox")
	}
	spec := imageSpec{arch: "amd64", cmd: []string{"sh"}, level: gzip.BestSpeed, layers: []func(*tar.Writer) error{busybox}}
	return u.push(ctx, name, tag, pushDocker, func(l *layout) (descriptor, error) { return l.putImage(spec) })
}

// PushIndex pushes an OCI image index of two images, linux/amd64 and
// linux/arm64, each with its own config and its own small layer.
func (u *Upstream) PushIndex(ctx context.Context, name, tag string) (Image, error) {
	return u.push(ctx, name, tag, pushIndex, func(l *layout) (descriptor, error) {
		var manifests []descriptor
		for _, arch := range []string{"amd64", "arm64"} {
			m, err := l.putImage(imageSpec{
				arch:   arch,
				cmd:    []string{"sh"},
				level:  gzip.BestSpeed,
				layers: []func(*tar.Writer) error{textLayer("etc", textFile{"etc/platform", "linux/" + arch + "\n"})},
			})
			if err != nil {
				return descriptor{}, err
			}
			manifests = append(manifests, m)
		}
		return l.putIndex(manifests)
	})
}

// PushDebianLike pushes tags "10" and "11" of name as two different
// single-platform Docker schema 2 images (their /etc/debian_version and
// /etc/os-release differ), and returns them in that order.
func (u *Upstream) PushDebianLike(ctx context.Context, name string) ([]Image, error) {
	var out []Image
	for _, v := range []struct{ tag, version, codename string }{
		{"10", "10.13", "buster"},
		{"11", "11.11", "bullseye"},
	} {
		osRelease := fmt.Sprintf("PRETTY_NAME=\"Debian GNU/Linux %s (%s)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"%s\"\nVERSION_CODENAME=%s\nID=debian\n",
			v.tag, v.codename, v.tag, v.codename)
		spec := imageSpec{
			arch:  "amd64",
			cmd:   []string{"bash"},
			level: gzip.BestSpeed,
			layers: []func(*tar.Writer) error{textLayer("etc",
				textFile{"etc/debian_version", v.version + "\n"},
				textFile{"etc/os-release", osRelease})},
		}
		img, err := u.push(ctx, name, v.tag, pushDocker, func(l *layout) (descriptor, error) { return l.putImage(spec) })
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// PushLarge pushes a Docker schema 2 image of layers layers that together
// hold totalMiB of random bytes (one file per layer). Random bytes do not
// compress, so the image's size stays near totalMiB. Each layer is streamed
// to disk as it is made.
func (u *Upstream) PushLarge(ctx context.Context, name, tag string, totalMiB, layers int) (Image, error) {
	if totalMiB <= 0 || layers <= 0 {
		return Image{}, fmt.Errorf("push large image %s:%s: want totalMiB > 0 and layers > 0, got %d and %d", name, tag, totalMiB, layers)
	}
	total := int64(totalMiB) * MiB
	spec := imageSpec{arch: "amd64", cmd: []string{"sh"}, level: gzip.NoCompression}
	for i := range layers {
		size := total / int64(layers)
		if i == layers-1 {
			size = total - size*int64(layers-1)
		}
		spec.layers = append(spec.layers, func(tw *tar.Writer) error {
			var seed [32]byte
			_, _ = crand.Read(seed[:])
			if err := tarDir(tw, "data"); err != nil {
				return err
			}
			return tarStream(tw, fmt.Sprintf("data/random-%d.bin", i+1), 0o644, size, rand.NewChaCha8(seed))
		})
	}
	return u.push(ctx, name, tag, pushDocker, func(l *layout) (descriptor, error) { return l.putImage(spec) })
}

// PushTags pushes tags "t1" to "t<n>" of name, each its own Docker schema 2 image: a small
// layer that every tag shares, a layer of randMiB MiB of random bytes of its own, and its own
// config. It is what a repository sync benchmark walks.
func (u *Upstream) PushTags(ctx context.Context, name string, n, randMiB int) ([]Image, error) {
	if n <= 0 || randMiB <= 0 {
		return nil, fmt.Errorf("push tags of %s: want n > 0 and randMiB > 0, got %d and %d", name, n, randMiB)
	}
	shared := textLayer("etc", textFile{"etc/shared", "one layer every tag of " + name + " shares\n"})
	var out []Image
	for i := 1; i <= n; i++ {
		own := func(tw *tar.Writer) error {
			var seed [32]byte
			_, _ = crand.Read(seed[:])
			if err := tarDir(tw, "data"); err != nil {
				return err
			}
			return tarStream(tw, "data/random.bin", 0o644, int64(randMiB)*MiB, rand.NewChaCha8(seed))
		}
		spec := imageSpec{arch: "amd64", cmd: []string{"sh"}, level: gzip.NoCompression, layers: []func(*tar.Writer) error{shared, own}}
		img, err := u.push(ctx, name, fmt.Sprintf("t%d", i), pushDocker, func(l *layout) (descriptor, error) { return l.putImage(spec) })
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// textFile is a small file of a textLayer.
type textFile struct{ name, content string }

// textLayer returns a layer of the directory dir and the files, in order.
func textLayer(dir string, files ...textFile) func(*tar.Writer) error {
	return func(tw *tar.Writer) error {
		if err := tarDir(tw, dir); err != nil {
			return err
		}
		for _, f := range files {
			if path.Dir(f.name) != dir {
				return fmt.Errorf("text layer: %s is not in %s", f.name, dir)
			}
			if err := tarFile(tw, f.name, 0o644, []byte(f.content)); err != nil {
				return err
			}
		}
		return nil
	}
}
