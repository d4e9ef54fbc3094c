package reposync

import (
	"slices"
	"testing"
)

// TestFnmatch checks the shell patterns against what Python's fnmatch.fnmatchcase answers.
func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		name, pat string
		want      bool
	}{
		{"latest", "latest", true},
		{"latest", "late", false},
		{"1.2.3", "1.*", true},
		{"1.2.3", "*.3", true},
		{"v1", "v?", true},
		{"v10", "v?", false},
		{"a", "[abc]", true},
		{"d", "[abc]", false},
		{"d", "[!abc]", true},
		{"b", "[a-c]", true},
		{"-", "[a-]", true},
		{"x.y", "x.y", true},
		{"xay", "x.y", false}, // a dot is literal
		{"a+b", "a+b", true},
		{"[", "[", true}, // an unclosed class is a literal bracket
		{"Latest", "latest", false},
		{"sha256-abc.sig", "sha256-*", true},
		{"", "*", true},
	} {
		if got := fnmatch(c.name, c.pat); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.name, c.pat, got, c.want)
		}
	}
}

// TestSelectRefs checks Pulp 2.29's selection: excludes after includes, digests from
// includes appended, cosign companion tags set aside when filtering, every tag without filters.
func TestSelectRefs(t *testing.T) {
	tags := []string{"1", "10", "11", "latest", "sha256-aaaa.sig", "sha256-bbbb.att"}
	digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name               string
		includes, excludes []string
		refs, cosign       []string
	}{
		{"no filters", nil, nil, tags, nil},
		{"includes", []string{"1*"}, nil, []string{"1", "10", "11"}, []string{"sha256-aaaa.sig", "sha256-bbbb.att"}},
		{"excludes after includes", []string{"1*"}, []string{"11"}, []string{"1", "10"}, []string{"sha256-aaaa.sig", "sha256-bbbb.att"}},
		{"excludes only", nil, []string{"latest", "*.att"}, []string{"1", "10", "11"}, []string{"sha256-aaaa.sig"}},
		{"digest include", []string{"latest", digest}, nil, []string{"latest", digest}, []string{"sha256-aaaa.sig", "sha256-bbbb.att"}},
	} {
		sel := selectRefs(tags, c.includes, c.excludes)
		if !slices.Equal(sel.refs, c.refs) || !slices.Equal(sel.cosign, c.cosign) {
			t.Errorf("%s: refs %v cosign %v, want %v and %v", c.name, sel.refs, sel.cosign, c.refs, c.cosign)
		}
	}
	sel := selectRefs(tags, []string{"1"}, nil)
	if got := sel.companions(map[string]bool{"sha256:aaaa": true}); !slices.Equal(got, []string{"sha256-aaaa.sig"}) {
		t.Errorf("companions of sha256:aaaa: %v", got)
	}
}
