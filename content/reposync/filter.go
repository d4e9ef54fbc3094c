package reposync

import (
	"regexp"
	"strings"
)

// fnmatch reports whether name matches the shell pattern pat as Python's fnmatch.fnmatchcase
// does (Pulp filters tags with it): * any run, ? one character, [seq] and [!seq] a class; the
// whole name must match and nothing escapes.
func fnmatch(name, pat string) bool {
	re, err := regexp.Compile(translate(pat))
	return err == nil && re.MatchString(name)
}

// translate turns a shell pattern into an anchored regular expression, as fnmatch.translate.
func translate(pat string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(pat); {
		c := pat[i]
		i++
		switch c {
		case '*':
			b.WriteString(`.*`)
			for i < len(pat) && pat[i] == '*' {
				i++
			}
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				continue
			}
			class := pat[i:j]
			i = j + 1
			neg := strings.HasPrefix(class, "!")
			if neg {
				class = class[1:]
			}
			if class == "" {
				if neg {
					b.WriteString(`.`) // [!] matches any character
				} else {
					b.WriteString(`[^\s\S]`) // [] matches nothing
				}
				continue
			}
			b.WriteString(`[`)
			if neg {
				b.WriteString(`^`)
			}
			for k := 0; k < len(class); k++ {
				ch := class[k]
				if ch == '-' && k > 0 && k < len(class)-1 {
					b.WriteByte('-')
					continue
				}
				b.WriteString(regexp.QuoteMeta(string(ch)))
			}
			b.WriteString(`]`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)\z`)
	return b.String()
}

// matchesAny reports whether name matches one of pats.
func matchesAny(name string, pats []string) bool {
	for _, p := range pats {
		if fnmatch(name, p) {
			return true
		}
	}
	return false
}

// filterResources keeps the names that match an include (all, when there are none) and no
// exclude: pulp_container's filter_resources, excludes applied after includes.
func filterResources(names, includes, excludes []string) []string {
	out := []string{}
	for _, n := range names {
		if len(includes) > 0 && !matchesAny(n, includes) {
			continue
		}
		if len(excludes) > 0 && matchesAny(n, excludes) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// cosignPattern selects cosign's companion tags (sha256-<hex>.sig, .att, .sbom).
const cosignPattern = "sha256-*"

// selection is what a sync asks for after the remote's filters: refs (tags, then digests from
// includes), and the cosign companion tags to sync afterwards for the digests synced.
type selection struct {
	refs   []string
	cosign []string
}

// selectRefs applies the remote's includes and excludes to the upstream tags as Pulp 2.29
// does: with no filter every tag; with filters the tags kept (cosign companion tags set
// aside) followed by the includes that are digests.
func selectRefs(tags, includes, excludes []string) selection {
	if len(includes) == 0 && len(excludes) == 0 {
		return selection{refs: tags}
	}
	var digests []string
	for _, i := range includes {
		if strings.HasPrefix(i, "sha256:") {
			digests = append(digests, i)
		}
	}
	refs := filterResources(tags, includes, append(append([]string{}, excludes...), cosignPattern))
	return selection{refs: append(refs, digests...), cosign: filterResources(tags, []string{cosignPattern}, excludes)}
}

// companions returns the cosign tags of sel whose digest (sha256-<hex>[.suffix] names
// sha256:<hex>) is among synced.
func (sel selection) companions(synced map[string]bool) []string {
	var out []string
	for _, t := range sel.cosign {
		base := t
		if i := strings.LastIndex(t, "."); i >= 0 {
			base = t[:i]
		}
		if synced[strings.Replace(base, "-", ":", 1)] {
			out = append(out, t)
		}
	}
	return out
}
