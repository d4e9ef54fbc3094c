package testenv

import (
	"flag"
	"os"
	"testing"
)

// Main runs a package's tests 8 at a time unless -parallel says otherwise, then exits: the
// integration tests mostly wait on PostgreSQL, Redis and task workers, so GOMAXPROCS (go
// test's default) would leave the machine idle. It also sets the process's database
// encryption key (UseEncryptionKey). Call it from TestMain.
func Main(m *testing.M) {
	UseEncryptionKey()
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
