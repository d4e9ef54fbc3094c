package registry

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/pulpgo/pulpgo/models"
)

// DefaultUploadTimeout is how long an upload may go without a write before it is swept, when
// Config.UploadTimeout is zero.
const DefaultUploadTimeout = time.Hour

// uploadTimeout is how long an upload may go without a write.
func (r *Registry) uploadTimeout() time.Duration {
	if r.cfg.UploadTimeout > 0 {
		return r.cfg.UploadTimeout
	}
	return DefaultUploadTimeout
}

// startSweeper starts the content app's own timer that sweeps abandoned uploads, every half
// timeout (at most every minute): no task is needed, and with several content processes each
// sweeps (an upload being written is locked, and left alone).
func (r *Registry) startSweeper() {
	if r.cfg.UploadDir == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopSweep, r.sweepDone = cancel, make(chan struct{})
	every := max(min(r.uploadTimeout()/2, time.Minute), 10*time.Millisecond)
	go func() {
		defer close(r.sweepDone)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := r.SweepUploads(ctx); err != nil {
				r.log.Warn("sweeping abandoned uploads", "err", err)
			} else if n > 0 {
				r.log.Info("swept abandoned uploads", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// SweepUploads removes the uploads not written to for the upload timeout, with their bytes,
// staging files that no upload owns any more, and the pending rows of blobs pushed longer ago
// than the timeout that no manifest push recorded (their bytes are then left to an orphan
// cleanup); it returns how many uploads it removed.
// Uploads a request is writing to (their file is locked) are left alone.
func (r *Registry) SweepUploads(ctx context.Context) (int, error) {
	if err := os.MkdirAll(r.cfg.UploadDir, 0o700); err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-r.uploadTimeout())
	db := r.cfg.DB.WithContext(ctx)
	ids, err := models.StaleUploads(db, cutoff)
	if err != nil {
		return 0, err
	}
	if _, err := models.SweepPendingBlobs(db, cutoff); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if r.sweepOne(ctx, id) {
			n++
		}
	}
	entries, err := os.ReadDir(r.cfg.UploadDir)
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) || !models.ValidID(e.Name()) {
			continue
		}
		var count int64
		if db.Model(&models.Upload{}).Where("id = ?", e.Name()).Count(&count).Error == nil && count == 0 {
			_ = os.Remove(r.uploadPath(e.Name()))
		}
	}
	return n, nil
}

// sweepOne removes the abandoned upload id unless a request is writing to it.
func (r *Registry) sweepOne(ctx context.Context, id string) bool {
	f, err := os.OpenFile(r.uploadPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	r.dropUpload(ctx, id)
	return true
}
