package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/minio/minio-go/v7"
)

// SweepAge is how old an unfinished multipart upload must be before a sweep aborts it: far
// longer than any upload in progress of a live process goes between its start and its end
// (fills are bounded by fill.DefaultTimeout, an hour).
const SweepAge = 2 * time.Hour

// Upload is an unfinished multipart upload below the driver's prefix.
type Upload struct {
	Key, ID   string
	Initiated time.Time
}

// Uploads lists the unfinished multipart uploads below the driver's prefix.
func (d *Driver) Uploads(ctx context.Context) ([]Upload, error) {
	prefix := d.prefix
	if prefix != "" {
		prefix += "/"
	}
	var out []Upload
	for u := range d.client.ListIncompleteUploads(ctx, d.bucket, prefix, true) {
		if u.Err != nil {
			return out, fmt.Errorf("storage: list unfinished uploads of %s: %w", d, u.Err)
		}
		out = append(out, Upload{Key: u.Key, ID: u.UploadID, Initiated: u.Initiated})
	}
	return out, nil
}

// SweepUploads aborts the unfinished multipart uploads below the prefix that were started
// more than age ago (0: all of them, for a store no other process writes to), which crashed
// processes left behind, and returns how many it aborted.
func (d *Driver) SweepUploads(ctx context.Context, age time.Duration) (int, error) {
	uploads, err := d.Uploads(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-age)
	n := 0
	var errs []error
	for _, u := range uploads {
		if age > 0 && u.Initiated.After(cutoff) {
			continue
		}
		err := d.core.AbortMultipartUpload(ctx, d.bucket, u.Key, u.ID)
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
			errs = append(errs, fmt.Errorf("storage: abort unfinished upload of %s: %w", u.Key, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Sweep runs SweepUploads(age) now and then every interval until ctx ends, logging what it
// aborted and its failures.
func (d *Driver) Sweep(ctx context.Context, interval, age time.Duration, log *slog.Logger) {
	for {
		n, err := d.SweepUploads(ctx, age)
		if n > 0 {
			log.Info("aborted unfinished S3 uploads", "storage", d.String(), "count", n)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("sweep unfinished S3 uploads", "storage", d.String(), "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
