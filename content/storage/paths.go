package storage

import (
	"path"
	"strings"
)

// Digest algorithms accepted by ParseDigest, with the length of their hex encoding.
const (
	AlgorithmSHA256 = "sha256"
	AlgorithmSHA512 = "sha512"
)

// hexLen maps each accepted algorithm to the length of its lowercase hex encoding.
var hexLen = map[string]int{AlgorithmSHA256: 64, AlgorithmSHA512: 128}

// ParseDigest splits a content digest such as "sha256:<64 hex>" into its algorithm and hex
// parts. Only sha256 (64 hex) and sha512 (128 hex) with lowercase hex are accepted; anything
// else returns *InvalidPathError naming the digest, since a digest becomes part of a path.
func ParseDigest(digest string) (algorithm, hex string, err error) {
	algorithm, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return "", "", &InvalidPathError{Path: digest}
	}
	n, ok := hexLen[algorithm]
	if !ok || len(hex) != n || !isLowerHex(hex) {
		return "", "", &InvalidPathError{Path: digest}
	}
	return algorithm, hex, nil
}

// BlobPath returns where the blob with digest is stored, for example
// "blobs/sha256/ab/abcdef…". An invalid digest returns *InvalidPathError.
func BlobPath(digest string) (string, error) {
	algorithm, hex, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return path.Join("blobs", algorithm, hex[:2], hex), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CleanPath validates an object path as every driver must (relative, slash-separated, no
// element beginning with ".", which also rules out escapes) and returns its cleaned form; an
// invalid path returns *InvalidPathError. Drivers other than Filesystem name their objects
// with it.
func CleanPath(p string) (string, error) { return cleanPath(p) }
