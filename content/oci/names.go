package oci

import (
	"regexp"
	"strings"
)

var (
	nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	sha256Digest  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	sha512Digest  = regexp.MustCompile(`^sha512:[a-f0-9]{128}$`)
)

// ValidName reports whether name follows the distribution spec's repository name grammar:
// lowercase components separated by "/", nothing that could traverse a path.
func ValidName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range strings.Split(name, "/") {
		if !nameComponent.MatchString(c) {
			return false
		}
	}
	return true
}

// ValidTag reports whether t is a valid tag.
func ValidTag(t string) bool { return tagPattern.MatchString(t) }

// ValidDigest reports whether d is a sha256 or sha512 digest in canonical form.
func ValidDigest(d string) bool { return sha256Digest.MatchString(d) || sha512Digest.MatchString(d) }

// IsDigest reports whether a manifest reference is a digest rather than a tag.
func IsDigest(ref string) bool { return strings.Contains(ref, ":") }
