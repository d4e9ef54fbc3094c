package storage

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// NewHash returns a new hash of a digest algorithm accepted by ParseDigest: sha512 for
// AlgorithmSHA512, sha256 for anything else (ParseDigest has checked the algorithm before).
// Both hashes' states are encoding.BinaryMarshaler, so a running hash can be saved and resumed.
func NewHash(algorithm string) hash.Hash {
	if algorithm == AlgorithmSHA512 {
		return sha512.New()
	}
	return sha256.New()
}
