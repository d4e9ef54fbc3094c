package oci

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// MaxManifestSize is the largest manifest read, fetched, stored or served (4 MiB, as
// Distribution's limit).
const MaxManifestSize = 4 << 20

// ManifestDigest returns the digest of manifest bytes raw with algorithm ("sha256" or
// "sha512"): the hash of the bytes, except for a signed Docker schema 1 manifest, whose digest
// is the hash of its JWS payload (the bytes without the signature block), as Distribution and
// every client compute it. It is what the server computes itself before storing or serving a
// manifest under a digest: a digest an upstream claims is never taken on trust.
func ManifestDigest(raw []byte, algorithm string) (string, error) {
	var h hash.Hash
	switch algorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return "", fmt.Errorf("%w: unsupported digest algorithm %q", ErrDigestInvalid, algorithm)
	}
	payload, err := schema1Payload(raw)
	if err != nil {
		return "", err
	}
	h.Write(payload)
	return algorithm + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// ManifestHasDigest reports whether raw's digest (ManifestDigest with digest's algorithm) is
// digest.
func ManifestHasDigest(raw []byte, digest string) bool {
	alg, _, ok := strings.Cut(digest, ":")
	if !ok {
		return false
	}
	got, err := ManifestDigest(raw, alg)
	return err == nil && got == digest
}

// errSchema1Signature is the error of a signed schema 1 manifest whose signatures do not say
// where its payload ends.
var errSchema1Signature = fmt.Errorf("%w: schema 1 signature block is malformed", ErrManifestInvalid)

// schema1Payload returns the bytes a manifest's digest covers: raw itself, or for a signed
// schema 1 manifest (a JSON object with a "signatures" array) the JWS payload that libtrust's
// pretty signature format rebuilds from each signature's protected header: the first
// formatLength bytes of raw followed by formatTail. Every signature must agree on it.
func schema1Payload(raw []byte) ([]byte, error) {
	if !bytes.Contains(raw, []byte(`"signatures"`)) {
		return raw, nil
	}
	var doc struct {
		SchemaVersion int64 `json:"schemaVersion"`
		Signatures    []struct {
			Protected string `json:"protected"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.SchemaVersion != 1 || doc.Signatures == nil {
		// Not a signed schema 1 manifest (an annotation may say "signatures"): the bytes count.
		return raw, nil
	}
	if len(doc.Signatures) == 0 {
		return nil, errSchema1Signature
	}
	var payload []byte
	for i, s := range doc.Signatures {
		prot, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s.Protected, "="))
		if err != nil {
			return nil, errSchema1Signature
		}
		var hdr struct {
			FormatLength *int   `json:"formatLength"`
			FormatTail   string `json:"formatTail"`
		}
		if err := json.Unmarshal(prot, &hdr); err != nil || hdr.FormatLength == nil {
			return nil, errSchema1Signature
		}
		n := *hdr.FormatLength
		tail, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hdr.FormatTail, "="))
		if err != nil || n <= 0 || n > len(raw) {
			return nil, errSchema1Signature
		}
		p := append(append([]byte{}, raw[:n]...), tail...)
		if i > 0 && !bytes.Equal(p, payload) {
			return nil, errors.Join(errSchema1Signature, errors.New("signatures disagree on the payload"))
		}
		payload = p
	}
	return payload, nil
}
