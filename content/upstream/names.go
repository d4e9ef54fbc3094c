package upstream

import (
	"regexp"
	"strconv"
	"strings"
)

// Grammar of the distribution spec, anchored. A name is slash-separated components of lowercase
// alphanumerics joined by single separators, so "..", "/", "%" and empty components cannot
// appear in a URL built from it.
var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// maxNameLength is the distribution limit on a repository name.
const maxNameLength = 255

// validName reports whether repo is a repository name of the distribution grammar.
func validName(repo string) bool {
	return len(repo) <= maxNameLength && nameRE.MatchString(repo)
}

// validDigest reports whether d is "sha256:" followed by 64 lowercase hex digits.
func validDigest(d string) bool { return digestRE.MatchString(d) }

// validTag reports whether t is a tag of the distribution grammar.
func validTag(t string) bool { return tagRE.MatchString(t) }

// isDigest reports whether ref is meant as a digest rather than a tag (tags cannot contain ':').
func isDigest(ref string) bool { return strings.Contains(ref, ":") }

// checkName returns an *Error wrapping ErrInvalidName when repo is not a valid name.
func checkName(op, repo, ref string) error {
	if !validName(repo) {
		return &Error{Op: op, Repo: repo, Ref: ref, Err: ErrInvalidName}
	}
	return nil
}

// checkRef returns an *Error when ref is neither a valid tag nor a valid digest.
func checkRef(op, repo, ref string) error {
	if err := checkName(op, repo, ""); err != nil {
		return err
	}
	if isDigest(ref) {
		return checkDigest(op, repo, ref)
	}
	if !validTag(ref) {
		return &Error{Op: op, Repo: repo, Ref: ref, Err: ErrInvalidReference}
	}
	return nil
}

// checkDigest returns an *Error wrapping ErrInvalidDigest when d is not a sha256 digest.
func checkDigest(op, repo, d string) error {
	if err := checkName(op, repo, ""); err != nil {
		return err
	}
	if !validDigest(d) {
		return &Error{Op: op, Repo: repo, Ref: d, Err: ErrInvalidDigest}
	}
	return nil
}

// quoteBad renders untrusted text for an error string: plain when it only holds characters of
// names, tags and digests, else quoted (control characters escaped); bounded either way.
func quoteBad(s string) string {
	const max = 300
	plain := !strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-/:@+", r))
	})
	if len(s) > max {
		s, plain = s[:max], false
	}
	if plain && s != "" {
		return s
	}
	return strconv.Quote(s)
}
