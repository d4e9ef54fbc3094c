package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// Usager is implemented by drivers that can measure the bytes they hold: what a storage
// quota compares with its limit.
type Usager interface {
	// Usage returns the total size of the stored blobs and manifests.
	Usage(ctx context.Context) (int64, error)
}

var _ Usager = (*Filesystem)(nil)

// Usage returns the total size of the files under the blob tree (blobs and manifests; not
// unfinished writes, staging files or uploads).
func (s *Filesystem) Usage(ctx context.Context) (int64, error) {
	var total int64
	err := fs.WalkDir(s.root.FS(), "blobs", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking
				}
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: measure usage: %w", err)
	}
	return total, nil
}
