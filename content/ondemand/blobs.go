package ondemand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/models"
)

// policyStreamed is the remote policy whose blobs are served but never kept.
const policyStreamed = "streamed"

// Config is what Blobs needs.
type Config struct {
	DB *gorm.DB
	// Clients are the upstream clients of remotes, shared with the pull-through cache.
	Clients *remotes.Clients
	// Fills fetch the blobs that are kept (on_demand), into storage; Transient those that are
	// not (streamed).
	Fills     *fill.Fills
	Transient *fill.Transient
	// UpstreamTimeout bounds an upstream HEAD (default 5 s).
	UpstreamTimeout time.Duration
	Logger          *slog.Logger
}

// Blobs fetches the blobs recorded as RemoteArtifacts through their remotes.
type Blobs struct{ cfg Config }

var _ local.RemoteBlobs = (*Blobs)(nil)

// New returns Blobs.
func New(cfg Config) (*Blobs, error) {
	if cfg.DB == nil || cfg.Clients == nil || cfg.Fills == nil || cfg.Transient == nil {
		return nil, errors.New("ondemand: Config.DB, Clients, Fills and Transient are required")
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Blobs{cfg: cfg}, nil
}

// Blob serves the blob digest from the first of its RemoteArtifacts (oldest first) whose
// remote delivers it. A HEAD is answered from the recorded size without asking any upstream
// (Pulp fetches the whole blob for a HEAD; the size comes from the manifest the sync stored,
// and a GET still verifies the bytes). When no remote delivers the blob, the client gets the
// last remote's failure (BLOB_UNKNOWN for a 404, 502 for wrong bytes, 504 for an upstream
// down), nothing is stored, and the next pull tries again. A GET in a cache-only context
// (an anonymous pull with --fills-require-auth) asks no upstream: it gets the challenge.
func (b *Blobs) Blob(ctx context.Context, digest string, head bool) (*oci.BlobContent, error) {
	unknown := oci.ErrBlobUnknown.WithDetail("digest", digest)
	ras, err := models.RemoteArtifactsFor(b.cfg.DB.WithContext(ctx), digest)
	if err != nil {
		return nil, fmt.Errorf("remote artifacts of %s: %w", digest, err)
	}
	if head {
		for _, ra := range ras {
			if ra.Size > 0 {
				return &oci.BlobContent{Digest: digest, Size: ra.Size}, nil
			}
		}
	}
	if len(ras) > 0 && cacheonly.Is(ctx) {
		// --fills-require-auth: an anonymous pull may not make the server ask an upstream.
		return nil, cacheonly.ErrAuthRequired.WithDetail("digest", digest)
	}
	remotes, err := b.remotesOf(ctx, ras)
	if err != nil {
		return nil, err
	}
	var last error = unknown
	for i := range ras {
		ra := &ras[i]
		remote, ok := remotes[ra.RemoteID]
		if !ok {
			continue // deleted since the sync
		}
		bc, err := b.from(ctx, ra, remote, head, unknown)
		if err == nil {
			return bc, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		b.cfg.Logger.Warn("remote artifact failed", "digest", digest, "remote", ra.RemoteID, "name", ra.UpstreamName, "err", err)
		last = err
	}
	return nil, last
}

// remotesOf loads the remotes of ras by id, and orders ras so that the remotes that keep what
// they fetch (every policy but streamed) come first, oldest first within each group: a blob
// that an on_demand remote and a streamed remote both synced is kept at its first pull.
func (b *Blobs) remotesOf(ctx context.Context, ras []models.RemoteArtifact) (map[string]*models.Remote, error) {
	ids := make([]string, len(ras))
	for i, ra := range ras {
		ids[i] = ra.RemoteID
	}
	var list []models.Remote
	if err := b.cfg.DB.WithContext(ctx).Where("id IN ?", ids).Find(&list).Error; err != nil {
		return nil, fmt.Errorf("remotes of remote artifacts: %w", err)
	}
	out := make(map[string]*models.Remote, len(list))
	for i := range list {
		out[list[i].ID] = &list[i]
	}
	streamed := func(ra models.RemoteArtifact) bool {
		r, ok := out[ra.RemoteID]
		return ok && r.Policy == policyStreamed
	}
	slices.SortStableFunc(ras, func(a, b models.RemoteArtifact) int {
		switch sa, sb := streamed(a), streamed(b); {
		case sa == sb:
			return 0
		case sb:
			return -1
		default:
			return 1
		}
	})
	return out, nil
}

// from serves the blob through one remote artifact of remote.
func (b *Blobs) from(ctx context.Context, ra *models.RemoteArtifact, remote *models.Remote, head bool, unknown *oci.Error) (*oci.BlobContent, error) {
	cl, err := b.cfg.Clients.For(remote)
	if err != nil {
		return nil, err
	}
	if head {
		hctx, cancel := context.WithTimeout(ctx, b.cfg.UpstreamTimeout)
		defer cancel()
		size, err := cl.HeadBlob(hctx, ra.UpstreamName, ra.Digest)
		if err != nil {
			return nil, remotes.Error(err, unknown)
		}
		return &oci.BlobContent{Digest: ra.Digest, Size: size}, nil
	}
	open := func(ctx context.Context, off int64) (io.ReadCloser, int64, error) {
		body, size, err := cl.GetBlob(ctx, ra.UpstreamName, ra.Digest, off)
		if err != nil {
			return nil, 0, err
		}
		switch {
		case ra.Size <= 0:
		case size < 0:
			size = ra.Size - off // the fill checks that the bytes have it
		case size != ra.Size-off:
			_ = body.Close()
			return nil, 0, &fill.SizeMismatchError{Digest: ra.Digest, Want: ra.Size, Got: off + size}
		}
		return body, size, nil
	}
	f, size, err := b.fill(ctx, ra.Digest, cl.Key+"|"+ra.UpstreamName, remote.Policy == policyStreamed, open)
	if err != nil {
		return nil, remotes.Error(err, unknown)
	}
	read := func(ctx context.Context, off int64) io.ReadCloser {
		return remotes.FailReader(f.NewReader(ctx, off), f.Err, unknown)
	}
	return &oci.BlobContent{Digest: ra.Digest, Size: size, Open: read}, nil
}

// fill starts the fill of digest from open, or joins the one running (a pull-through fill or
// another version's, whose bytes are verified against the same digest), and waits for the
// blob's size. A joined fill that fails is retried once with open, so that another source's
// failure is not this one's. A streamed blob joins a fill that keeps it when one runs, and
// otherwise fills transiently.
func (b *Blobs) fill(ctx context.Context, digest, owner string, streamed bool, open fill.Source) (*fill.Fill, int64, error) {
	for attempt := 0; ; attempt++ {
		var f *fill.Fill
		var started bool
		switch {
		case !streamed:
			f, started = b.cfg.Fills.Claim(ctx, digest, owner, open, nil)
		default:
			if f = b.cfg.Fills.Running(digest); f == nil {
				f, started = b.cfg.Transient.Claim(ctx, digest, owner, open)
			}
		}
		size, err := f.Size(ctx)
		if err == nil {
			return f, size, nil
		}
		ferr := f.Err()
		if ferr == nil {
			return nil, 0, err // ctx ended
		}
		if started || attempt > 0 {
			return nil, 0, ferr
		}
	}
}
