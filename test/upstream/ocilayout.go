package upstream

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"
)

// OCI media types of the layouts we write; skopeo converts them to Docker
// schema 2 when pushing with --format v2s2.
const (
	mediaTypeOCIConfig = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// epoch is the modification time of every file in our layers, so a layer
// built twice from the same content has the same digest.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// platform is the platform of a manifest in an index.
type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// imageSpec is what putImage builds: one platform, a command, and layers,
// each written by a function into its own tar.
type imageSpec struct {
	arch   string
	cmd    []string
	layers []func(*tar.Writer) error
	level  int // gzip level of the layers
}

// layout is an OCI image layout being written in a directory.
type layout struct{ dir string }

// newLayout makes an empty OCI image layout in dir.
func newLayout(dir string) (*layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, err
	}
	return &layout{dir: dir}, nil
}

// blobPath is where the blob with the given hex sha256 lives.
func (l *layout) blobPath(hexDigest string) string {
	return filepath.Join(l.dir, "blobs", "sha256", hexDigest)
}

// putJSON stores v, marshalled, as a blob.
func (l *layout) putJSON(mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	sum := sha256.Sum256(b)
	hexDigest := hex.EncodeToString(sum[:])
	if err := os.WriteFile(l.blobPath(hexDigest), b, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexDigest, Size: int64(len(b))}, nil
}

// putLayer streams the tar that fill writes, gzipped at level, into a blob.
// It returns the layer's descriptor and its diff ID (the digest of the
// uncompressed tar). Nothing is held in memory but small buffers.
func (l *layout) putLayer(level int, fill func(*tar.Writer) error) (desc descriptor, diffID string, err error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, "blobs", "sha256"), "layer-*")
	if err != nil {
		return descriptor{}, "", err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	zipped := &hashWriter{h: sha256.New(), w: f}
	gz, err := gzip.NewWriterLevel(zipped, level)
	if err != nil {
		return descriptor{}, "", err
	}
	plain := &hashWriter{h: sha256.New(), w: gz}
	tw := tar.NewWriter(plain)
	if err := fill(tw); err != nil {
		return descriptor{}, "", fmt.Errorf("fill layer: %w", err)
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			return descriptor{}, "", fmt.Errorf("write layer: %w", err)
		}
	}
	hexDigest := hex.EncodeToString(zipped.h.Sum(nil))
	if err := os.Rename(f.Name(), l.blobPath(hexDigest)); err != nil {
		return descriptor{}, "", err
	}
	desc = descriptor{MediaType: mediaTypeOCILayer, Digest: "sha256:" + hexDigest, Size: zipped.n}
	return desc, "sha256:" + hex.EncodeToString(plain.h.Sum(nil)), nil
}

// history is one entry of an image config's history.
type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

// imageConfig is an image's config blob, as putImage and the moving images
// write it.
type imageConfig struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env    []string          `json:"Env"`
		Cmd    []string          `json:"Cmd"`
		Labels map[string]string `json:"Labels,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []history `json:"history,omitempty"`
}

// putImage writes the layers, config and manifest of spec and returns the
// manifest's descriptor, platform included.
func (l *layout) putImage(spec imageSpec) (descriptor, error) {
	var cfg imageConfig
	cfg.Created = epoch.Format(time.RFC3339)
	cfg.Architecture, cfg.OS = spec.arch, "linux"
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.Cmd = spec.cmd
	cfg.RootFS.Type = "layers"
	var layers []descriptor
	for i, fill := range spec.layers {
		d, diffID, err := l.putLayer(spec.level, fill)
		if err != nil {
			return descriptor{}, err
		}
		layers = append(layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, history{Created: cfg.Created, CreatedBy: fmt.Sprintf("pulpgo test layer %d", i+1)})
	}
	cfgDesc, err := l.putJSON(mediaTypeOCIConfig, cfg)
	if err != nil {
		return descriptor{}, err
	}
	m, err := l.putJSON(MediaTypeOCIManifest, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"config":        cfgDesc,
		"layers":        layers,
	})
	m.Platform = &platform{Architecture: spec.arch, OS: "linux"}
	return m, err
}

// putIndex writes an image index of manifests and returns its descriptor.
func (l *layout) putIndex(manifests []descriptor) (descriptor, error) {
	return l.putJSON(MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIIndex,
		"manifests":     manifests,
	})
}

// tag writes index.json, naming d as tag (oci:<dir>:<tag> for skopeo).
func (l *layout) tag(tag string, d descriptor) error {
	d.Platform = nil
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []descriptor{d}})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644)
}

// hashWriter hashes and counts what it passes on to w.
type hashWriter struct {
	h hash.Hash
	w io.Writer
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// tarDir adds a directory entry.
func tarDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch})
}

// tarFile adds a regular file with content.
func tarFile(tw *tar.Writer, name string, mode int64, content []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content)), ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

// tarStream adds a regular file of size bytes read from r.
func tarStream(tw *tar.Writer, name string, mode, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: epoch}); err != nil {
		return err
	}
	n, err := io.CopyN(tw, r, size)
	if err != nil {
		return fmt.Errorf("write %s: %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

// tarSymlink adds a symbolic link.
func tarSymlink(tw *tar.Writer, name, target string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch})
}
