package pullthrough

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stagingPattern names fills' staging files; SweepStaging removes only names matching it.
const stagingPattern = "fill-*.part"

// createStagingFile creates a staging file with a random name in dir, creating dir if needed.
func createStagingFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, stagingPattern)
}

// SweepStaging deletes the staging files that fills interrupted by a crash left in dir. Call
// it at start, before any fill runs; every process needs a staging directory of its own, or a
// sweep could remove another process's running fill. A missing dir is not an error.
func SweepStaging(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep staging %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if ok, _ := filepath.Match(stagingPattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("sweep staging: %w", err))
		}
	}
	return errors.Join(errs...)
}
