package pullthrough

import (
	"strconv"
	"testing"
	"time"
)

// TestTagStatesStayBounded checks that the tags a long-running process has seen do not pile
// up without end: past the bound the least recently used states make room (the database
// answers for those, once recorded), and the newest stays.
func TestTagStatesStayBounded(t *testing.T) {
	defer func(n int) { tagLimit = n }(tagLimit)
	tagLimit = 100
	ts := newTagStates()
	old := time.Now().Add(-time.Hour)
	for i := range 10 * tagLimit {
		ts.set("repo", strconv.Itoa(i), tagState{digest: "sha256:x", checked: old})
	}
	ts.set("repo", "fresh", tagState{digest: "sha256:y", checked: time.Now()})
	if n := ts.c.Len(); n > tagLimit {
		t.Fatalf("%d tag states kept, want at most %d", n, tagLimit)
	}
	if s, ok := ts.get("repo", "fresh"); !ok || s.digest != "sha256:y" {
		t.Fatalf("the newest state was lost: %v %v", s, ok)
	}
	if n := len(ts.names("repo")); n != tagLimit {
		t.Fatalf("names lists %d tags, want %d", n, tagLimit)
	}
}
