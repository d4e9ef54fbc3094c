package pullthrough

import (
	"strings"
	"time"

	"github.com/pulpgo/pulpgo/content/lru"
)

// tagState is what this process knows of a tag of a pulled image: the digest it points to
// and when the upstream last confirmed it.
type tagState struct {
	digest  string
	checked time.Time
}

// tagStates are the tags this process has seen, by repository and tag, least recently used
// first out. Tags recorded by other processes, or dropped here, are found in the database.
type tagStates struct{ c *lru.Cache[string, tagState] }

// The bounds of the tag states (a key is at most 36 + 1 + 128 bytes).
var (
	tagLimit      = 10000
	tagBytesLimit = int64(4 << 20)
)

func newTagStates() *tagStates {
	return &tagStates{lru.New(lru.Options[string, tagState]{MaxEntries: tagLimit, MaxBytes: tagBytesLimit,
		Size: func(k string, s tagState) int64 { return int64(len(k)+len(s.digest)) + 64 }})}
}

func tagKey(repoID, tag string) string { return repoID + "|" + tag }

func (t *tagStates) get(repoID, tag string) (tagState, bool) { return t.c.Get(tagKey(repoID, tag)) }

func (t *tagStates) set(repoID, tag string, s tagState) { t.c.Add(tagKey(repoID, tag), s) }

// names lists the tags of repoID this process knows.
func (t *tagStates) names(repoID string) []string {
	var out []string
	prefix := repoID + "|"
	t.c.Range(func(k string, _ tagState) bool {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			out = append(out, name)
		}
		return true
	})
	return out
}
