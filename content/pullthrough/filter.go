package pullthrough

import (
	"regexp"
	"strings"
)

// allowed applies a pull-through remote's includes/excludes to an upstream name, as Pulp does
// (fnmatch: "*" also matches "/"). With neither list set everything is allowed; otherwise a
// name must match an include and no exclude (so excludes alone allow nothing, as in Pulp).
func allowed(name string, includes, excludes []string) bool {
	if len(includes) == 0 && len(excludes) == 0 {
		return true
	}
	in := false
	for _, p := range includes {
		if fnmatch(p, name) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range excludes {
		if fnmatch(p, name) {
			return false
		}
	}
	return true
}

// fnmatch matches name against a shell pattern with Python's fnmatch rules: "*" any run of
// characters (slashes included), "?" one character, "[seq]" and "[!seq]" classes.
func fnmatch(pattern, name string) bool {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(pattern[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := pattern[i+1 : i+1+j]
			i += j + 1
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(name)
}
