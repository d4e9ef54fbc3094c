package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

// Seed manifests of each media type, as registries serve them.
const (
	seedDockerManifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1457,"digest":"sha256:a9d583973f65a19b3bbd7a4312b4e2c27712c44c0ed8b94e9a38cc73b7565b22"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2152262,"digest":"sha256:9ad63333ebc97e32b987ae66aa3cff81300e4c2e6d2f2395cef8a3ae18b249fe"}]}`
	seedOCIManifest    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4","size":32}],"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:9ad63333ebc97e32b987ae66aa3cff81300e4c2e6d2f2395cef8a3ae18b249fe","size":10}}`
	seedOCIIndex       = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:9ad63333ebc97e32b987ae66aa3cff81300e4c2e6d2f2395cef8a3ae18b249fe","size":528,"platform":{"architecture":"amd64","os":"linux"}}]}`
	seedDockerList     = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:9ad63333ebc97e32b987ae66aa3cff81300e4c2e6d2f2395cef8a3ae18b249fe","size":528,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`
	seedNoMediaType    = `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`
)

// FuzzParseManifest checks ParseManifest on any bytes and Content-Type. Property: it never
// panics, and a manifest it accepts is consistent: Raw is the input byte for byte; Digest is
// ManifestDigest of the input, which is the sha256 of the raw bytes for every type but signed
// schema 1 (whose digest is its payload's); the media type is the JSON's own mediaType when it
// names one; every digest it references (config, layers, manifests, subject) is a valid
// digest; and parsing the raw bytes again, with the found media type as Content-Type, gives
// the same digest, media type and references. A rejection is ErrManifestInvalid.
func FuzzParseManifest(f *testing.F) {
	for _, m := range []string{seedDockerManifest, seedOCIManifest, seedOCIIndex, seedDockerList, seedNoMediaType} {
		f.Add([]byte(m), "")
		f.Add([]byte(m), MediaTypeOCIManifest)
	}
	f.Add([]byte(signedSchema1(testPayload, []int{len(testPayload) - 2})), MediaTypeDockerSchema1JWS)
	f.Add([]byte(testPayload), MediaTypeDockerSchema1)
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"digest":"sha256:../../etc/passwd"}]}`), "")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, raw []byte, contentType string) {
		m, err := ParseManifest(raw, contentType)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("rejection %v is not ErrManifestInvalid", err)
			}
			return
		}
		if !bytes.Equal(m.Raw, raw) {
			t.Fatal("Raw is not the input")
		}
		want, err := ManifestDigest(raw, "sha256")
		if err != nil || m.Digest != want {
			t.Fatalf("Digest %s, ManifestDigest %s, %v", m.Digest, want, err)
		}
		if m.MediaType != MediaTypeDockerSchema1 && m.Digest != Digest(raw) {
			t.Fatalf("%s manifest: digest %s is not the sha256 of its bytes", m.MediaType, m.Digest)
		}
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(raw, &doc) == nil && doc.MediaType != "" && doc.MediaType != m.MediaType {
			t.Fatalf("media type %q, the JSON says %q", m.MediaType, doc.MediaType)
		}
		if m.MediaType == "" {
			t.Fatal("no media type")
		}
		for _, d := range references(m) {
			if !ValidDigest(d) {
				t.Fatalf("accepted a reference to %q", d)
			}
		}
		again, err := ParseManifest(m.Raw, m.MediaType)
		if err != nil {
			t.Fatalf("parsing the accepted manifest again as %s: %v", m.MediaType, err)
		}
		if again.Digest != m.Digest || again.MediaType != m.MediaType ||
			strings.Join(references(again), ",") != strings.Join(references(m), ",") {
			t.Fatalf("parsed again: %s %s %v; first %s %s %v", again.Digest, again.MediaType, references(again),
				m.Digest, m.MediaType, references(m))
		}
	})
}

// references lists every digest m names.
func references(m *Manifest) []string {
	var out []string
	if m.Config != nil {
		out = append(out, "config="+m.Config.Digest)
	}
	for _, d := range m.Layers {
		out = append(out, d.Digest)
	}
	for _, d := range m.Manifests {
		out = append(out, d.Digest)
	}
	if m.Subject != nil {
		out = append(out, "subject="+m.Subject.Digest)
	}
	for i, d := range out {
		_, out[i], _ = strings.Cut(d, "=")
		if out[i] == "" {
			out[i] = d
		}
	}
	return out
}

// The distribution spec's grammar, written out from the spec text (not from names.go): a
// repository name, a tag, and the image spec's digest grammar with the encodings registered
// for sha256 and sha512.
var (
	specName      = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTag       = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	specDigest    = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	specEncodings = map[string]*regexp.Regexp{"sha256": regexp.MustCompile(`^[a-f0-9]{64}$`), "sha512": regexp.MustCompile(`^[a-f0-9]{128}$`)}
)

// FuzzReference checks the name, tag and digest checks on any string. Property: ValidName
// accepts exactly the spec's repository names of at most 255 bytes, ValidTag exactly the
// spec's tags, ValidDigest exactly the spec's digests of a registered algorithm (sha256,
// sha512) in canonical lowercase, and storage.ParseDigest the same digests; IsDigest tells
// every valid digest from every valid tag; and no accepted name or digest leads out of a
// storage root: a name is a clean relative path, and BlobPath of a digest is
// blobs/<algorithm>/<2 hex>/<hex>, local below any root.
func FuzzReference(f *testing.F) {
	for _, s := range []string{"library/busybox", "a", "my-org/my.repo__x/y--z", "a/../b", "../x", "A", "a//b", "a/",
		"latest", "v1.2.3-rc_1", ".hidden", "_x", strings.Repeat("t", 129),
		"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4", "sha256:../../../../etc/passwd",
		"sha512:" + strings.Repeat("ab", 64), "sha256:" + strings.Repeat("A", 64), "md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256+b64:YQ==", "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidName(s), len(s) <= 255 && specName.MatchString(s); got != want {
			t.Fatalf("ValidName(%q) = %v, the spec says %v", s, got, want)
		}
		if ValidName(s) && (!filepath.IsLocal(s) || path.Clean(s) != s) {
			t.Fatalf("accepted name %q is not a clean relative path", s)
		}
		if got, want := ValidTag(s), specTag.MatchString(s); got != want {
			t.Fatalf("ValidTag(%q) = %v, the spec says %v", s, got, want)
		}
		alg, enc, _ := strings.Cut(s, ":")
		re, registered := specEncodings[alg]
		want := specDigest.MatchString(s) && registered && re.MatchString(enc)
		if got := ValidDigest(s); got != want {
			t.Fatalf("ValidDigest(%q) = %v, the spec says %v", s, got, want)
		}
		if _, _, err := storage.ParseDigest(s); (err == nil) != want {
			t.Fatalf("storage.ParseDigest(%q) = %v; ValidDigest says %v", s, err, want)
		}
		if ValidTag(s) && IsDigest(s) || want && !IsDigest(s) {
			t.Fatalf("IsDigest(%q) = %v", s, IsDigest(s))
		}
		p, err := storage.BlobPath(s)
		if (err == nil) != want {
			t.Fatalf("BlobPath(%q) = %q, %v; ValidDigest says %v", s, p, err, want)
		}
		if err != nil {
			return
		}
		if p != "blobs/"+alg+"/"+enc[:2]+"/"+enc || !filepath.IsLocal(p) || path.Clean(p) != p {
			t.Fatalf("BlobPath(%q) = %q", s, p)
		}
		root := "/srv/storage"
		if full := filepath.Join(root, p); !strings.HasPrefix(full, root+"/blobs/") {
			t.Fatalf("BlobPath(%q) leads to %s, outside %s", s, full, root)
		}
	})
}
