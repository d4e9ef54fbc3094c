package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// tagRE is the tag grammar of the distribution spec.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// pushMode says how skopeo pushes a layout.
type pushMode int

const (
	pushDocker pushMode = iota // one image, converted to Docker schema 2
	pushIndex                  // an OCI index and all its images, kept as OCI
)

// push builds an OCI layout with build, pushes it to the registry as
// name:tag with skopeo, deletes the layout, and describes what the registry
// now serves.
func (u *Upstream) push(ctx context.Context, name, tag string, mode pushMode, build func(*layout) (descriptor, error)) (Image, error) {
	if !validName(name) || !tagRE.MatchString(tag) {
		return Image{}, fmt.Errorf("push %s:%s: invalid repository name or tag", name, tag)
	}
	skopeo, err := exec.LookPath(u.opts.SkopeoBinary)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s (apt-get install -y skopeo): %v", ErrMissingTool, u.opts.SkopeoBinary, err)
	}
	dir, err := os.MkdirTemp(u.dir, "layout-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(dir)
	l, err := newLayout(dir)
	if err != nil {
		return Image{}, err
	}
	d, err := build(l)
	if err != nil {
		return Image{}, fmt.Errorf("build %s:%s: %w", name, tag, err)
	}
	if err := l.tag(tag, d); err != nil {
		return Image{}, err
	}

	args := []string{"--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--dest-no-creds"}
	if mode == pushDocker {
		args = append(args, "--format", "v2s2")
	} else {
		args = append(args, "--all")
	}
	args = append(args, "oci:"+dir+":"+tag, "docker://"+u.RegistryAddr()+"/"+name+":"+tag)
	if out, err := exec.CommandContext(ctx, skopeo, args...).CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("push %s:%s: skopeo %s: %w\n%s", name, tag, strings.Join(args, " "), err, out)
	}
	img, err := u.describe(ctx, name, tag)
	if err != nil {
		return Image{}, err
	}
	img.Tag = tag
	return img, nil
}

// describe reads the manifest name:ref (and an index's children) from the
// registry.
func (u *Upstream) describe(ctx context.Context, name, ref string) (Image, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.registryURL()+"/v2/"+name+"/manifests/"+ref, nil)
	if err != nil {
		return Image{}, err
	}
	req.Header.Set("Accept", strings.Join([]string{
		MediaTypeDockerManifest, MediaTypeDockerManifestList, MediaTypeOCIManifest, MediaTypeOCIIndex,
	}, ", "))
	resp, err := u.client.Do(req)
	if err != nil {
		return Image{}, fmt.Errorf("describe %s@%s: %w", name, ref, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*MiB))
	if err != nil {
		return Image{}, fmt.Errorf("describe %s@%s: %w", name, ref, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Image{}, fmt.Errorf("describe %s@%s: registry answered %s: %s", name, ref, resp.Status, body)
	}
	sum := sha256.Sum256(body)
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	img := Image{Name: name, ManifestDigest: "sha256:" + hex.EncodeToString(sum[:]), MediaType: mediaType, Size: int64(len(body))}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != img.ManifestDigest {
		return Image{}, fmt.Errorf("describe %s@%s: registry says digest %s, body hashes to %s", name, ref, got, img.ManifestDigest)
	}

	var m struct {
		Config    *descriptor  `json:"config"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return Image{}, fmt.Errorf("describe %s@%s: %w", name, ref, err)
	}
	if m.Config != nil {
		img.Config = &Blob{Digest: m.Config.Digest, Size: m.Config.Size, MediaType: m.Config.MediaType}
	}
	for _, d := range m.Layers {
		img.Layers = append(img.Layers, Blob{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType})
	}
	for _, d := range m.Manifests {
		child, err := u.describe(ctx, name, d.Digest)
		if err != nil {
			return Image{}, err
		}
		if p := d.Platform; p != nil {
			child.Platform = p.OS + "/" + p.Architecture
			if p.Variant != "" {
				child.Platform += "/" + p.Variant
			}
		}
		img.Children = append(img.Children, child)
	}
	return img, nil
}

// DeleteManifest deletes the manifest name@digest from the registry together with every tag
// that names it: an upstream that dropped an image, for syncs in mirror mode. The front stays
// read-only; only the test deletes.
func (u *Upstream) DeleteManifest(ctx context.Context, name, digest string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.registryURL()+"/v2/"+name+"/manifests/"+digest, nil)
	if err != nil {
		return err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return fmt.Errorf("delete %s@%s: %w", name, digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("delete %s@%s: registry answered %s: %s", name, digest, resp.Status, body)
	}
	return nil
}
