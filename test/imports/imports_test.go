package imports

import "testing"

// recorder is a testing.TB that keeps its errors instead of failing.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(string, ...any) { r.errors++ }
func (r *recorder) Helper()               {}

// TestOnly checks the checker on this very package: it imports only the standard library, so
// allowing nothing passes, and a package with module imports (content/local) fails when
// they are not allowed.
func TestOnly(t *testing.T) {
	Only(t, ".")
	r := &recorder{TB: t}
	Only(r, "../../content/local")
	if r.errors == 0 {
		t.Fatal("content/local's module imports were not reported")
	}
}
