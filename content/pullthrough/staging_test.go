package pullthrough

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSweepStaging(t *testing.T) {
	dir := t.TempDir()
	left, err := createStagingFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	left.Close()
	for _, name := range []string{"keep.txt", "fill-but-not-part"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := SweepStaging(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"fill-but-not-part", "keep.txt"}; !slices.Equal(names, want) {
		t.Errorf("after SweepStaging: %v, want %v", names, want)
	}
	if err := SweepStaging(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("SweepStaging of a missing directory: %v", err)
	}
}
