package fill

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenStaging checks that a process's staging directory survives another process's
// start, that a dead process's directory (its lock released) is swept, and that Close removes
// the directory with its files.
func TestOpenStaging(t *testing.T) {
	root := t.TempDir()
	liveStaging, err := OpenStaging(root)
	if err != nil {
		t.Fatal(err)
	}
	defer liveStaging.Close()
	live := liveStaging.Dir()
	if err := os.WriteFile(filepath.Join(live, "fill-1.part"), []byte("in progress"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A process that crashed: its directory and lock file stay, the lock itself is gone.
	dead := filepath.Join(root, "deadbeef")
	if err := os.MkdirAll(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "fill-2.part"), []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fill-3.part"), []byte("older layout"), 0o644); err != nil {
		t.Fatal(err)
	}

	otherStaging, err := OpenStaging(root)
	if err != nil {
		t.Fatal(err)
	}
	other := otherStaging.Dir()
	if other == live {
		t.Fatal("two processes got the same staging directory")
	}
	if _, err := os.Stat(filepath.Join(live, "fill-1.part")); err != nil {
		t.Fatalf("a live process's fill was swept: %v", err)
	}
	for _, p := range []string{dead, dead + ".lock", filepath.Join(root, "fill-3.part")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left by a dead process was not swept (err %v)", p, err)
		}
	}
	file, err := otherStaging.createFile()
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	if err := otherStaging.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{other, other + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("Close left %s (err %v)", p, err)
		}
	}
}
