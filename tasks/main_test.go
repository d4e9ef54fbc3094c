package tasks

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs the integration tests 8 at a time unless -parallel says otherwise: they mostly
// wait on PostgreSQL, Redis and task workers, so GOMAXPROCS (go test's default) leaves the
// machine idle.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
