package oci

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// signedSchema1 builds a signed schema 1 manifest in libtrust's pretty JWS form: the payload
// without its closing "\n}", the signature block, and the closing brace; each signature's
// protected header says where the payload ends (formatLength) and what follows it
// (formatTail).
func signedSchema1(payload string, formatLength []int, tails ...string) string {
	sigs := ""
	for i, n := range formatLength {
		var tail string
		if i < len(tails) {
			tail = tails[i]
		} else {
			tail = payload[n:]
		}
		prot := fmt.Sprintf(`{"formatLength":%d,"formatTail":%q,"time":"2016-01-01T00:00:00Z"}`, n,
			base64.RawURLEncoding.EncodeToString([]byte(tail)))
		if i > 0 {
			sigs += ","
		}
		sigs += fmt.Sprintf(`{"header":{"alg":"ES256"},"signature":"c2ln","protected":%q}`,
			base64.RawURLEncoding.EncodeToString([]byte(prot)))
	}
	end := len(payload) - 2
	return payload[:end] + ",\n   \"signatures\": [" + sigs + "]\n}"
}

const testPayload = "{\n   \"schemaVersion\": 1,\n   \"name\": \"library/x\",\n   \"tag\": \"1\",\n   \"architecture\": \"amd64\",\n   \"fsLayers\": [\n      {\n         \"blobSum\": \"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4\"\n      }\n   ]\n}"

// TestSchema1Digest checks that a signed schema 1 manifest's digest is its payload's, as
// clients and Distribution compute it, and that the server never takes it from elsewhere.
func TestSchema1Digest(t *testing.T) {
	end := len(testPayload) - 2
	signed := signedSchema1(testPayload, []int{end})
	want := Digest([]byte(testPayload))
	got, err := ManifestDigest([]byte(signed), "sha256")
	if err != nil || got != want {
		t.Fatalf("ManifestDigest = %s, %v; want the payload's %s", got, err, want)
	}
	if got == Digest([]byte(signed)) {
		t.Fatal("the digest covers the signatures")
	}
	m, err := ParseManifest([]byte(signed), MediaTypeDockerSchema1JWS)
	if err != nil || m.Digest != want || m.MediaType != MediaTypeDockerSchema1 {
		t.Fatalf("ParseManifest: digest %s type %s err %v", m.Digest, m.MediaType, err)
	}
	if !ManifestHasDigest([]byte(signed), want) || ManifestHasDigest([]byte(signed), Digest([]byte("other"))) {
		t.Fatal("ManifestHasDigest disagrees with ManifestDigest")
	}
	// Two signatures of one payload agree; a signature that claims another payload does not.
	if got, err := ManifestDigest([]byte(signedSchema1(testPayload, []int{end, end})), "sha256"); err != nil || got != want {
		t.Fatalf("two agreeing signatures: %s, %v", got, err)
	}
	if _, err := ManifestDigest([]byte(signedSchema1(testPayload, []int{end, end}, "\n}", "\n }")), "sha256"); !errors.Is(err, ErrManifestInvalid) {
		t.Fatalf("disagreeing signatures: err %v, want MANIFEST_INVALID", err)
	}
	for _, n := range []int{0, -1, len(signed) + 1} {
		bad := signedSchema1(testPayload, []int{n}, "\n}")
		if _, err := ManifestDigest([]byte(bad), "sha256"); err == nil {
			t.Errorf("formatLength %d accepted", n)
		}
	}
}

// TestManifestDigestPlain checks that other manifests are hashed whole, also when an
// annotation mentions "signatures".
func TestManifestDigestPlain(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"annotations":{"signatures":"none"},"layers":[]}`)
	for _, alg := range []string{"sha256", "sha512"} {
		got, err := ManifestDigest(raw, alg)
		if err != nil || !ManifestHasDigest(raw, got) {
			t.Fatalf("%s: %s, %v", alg, got, err)
		}
	}
	if got, _ := ManifestDigest(raw, "sha256"); got != Digest(raw) {
		t.Fatalf("digest %s, want %s", got, Digest(raw))
	}
	if _, err := ManifestDigest(raw, "md5"); err == nil {
		t.Fatal("md5 accepted")
	}
}

// TestParseManifestHugeAnnotations checks that annotations over MaxAnnotationsSize are left
// out of the parsed manifest (the raw bytes keep them and its digest covers them), and that
// ordinary ones are kept.
func TestParseManifestHugeAnnotations(t *testing.T) {
	doc := func(v string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4","size":1},"layers":[],"annotations":{"k":"` + v + `"}}`)
	}
	small, err := ParseManifest(doc("v"), "")
	if err != nil || small.Annotations["k"] != "v" {
		t.Fatalf("small annotations: %v, %v", small.Annotations, err)
	}
	raw := doc(strings.Repeat("x", MaxAnnotationsSize))
	big, err := ParseManifest(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if big.Annotations != nil || big.Digest != Digest(raw) || big.MediaType != MediaTypeOCIManifest {
		t.Fatalf("huge annotations: %d kept, digest %s, type %s", len(big.Annotations), big.Digest, big.MediaType)
	}
}
