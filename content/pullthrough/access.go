package pullthrough

import (
	"context"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
)

// grants remembers which digests an image may serve from storage. Storage is shared by every
// repository, so a digest stored for one image (a private one, say) is served through another
// only when that image's repository holds it, that image's own upstream fetch delivered it, or
// that image's upstream confirms that the name has it. A grant is never recorded before one
// of these happened (a fill that merely started proves nothing).
type grants struct{ c *lru.Cache[string, struct{}] }

// Grants are small (a name and a digest); the bounds keep them under about 16 MiB.
const (
	maxGrants     = 100000
	maxGrantBytes = 16 << 20
)

func newGrants() grants {
	return grants{lru.New(lru.Options[string, struct{}]{MaxEntries: maxGrants, MaxBytes: maxGrantBytes})}
}

func (g grants) has(name, digest string) bool { return g.c.Has(name + "@" + digest) }

func (g grants) add(name, digest string) { g.c.Add(name+"@"+digest, struct{}{}) }

// grantManifest records that the image may serve manifest m, which its upstream has just
// confirmed (fetched, or named by a tag's HEAD), and what m references that a registry keeps:
// its config, its layers and its child manifests. A Distribution-based upstream (Docker Hub)
// accepts a manifest only when its repository holds each of them, the same word a HEAD of
// each would give, and recording the pull trusts that word too (tasks/record.go). Foreign and
// non-distributable layers are never granted: a registry accepts them without holding them
// (their bytes live at their URLs), so naming another image's digest as one proves nothing.
// So a client that already had some layers and pulls only the rest leaves the image able to
// serve every part of it, even to a cache-only client before the pull is recorded.
func (im *image) grantManifest(m *oci.Manifest) {
	im.c.grants.add(im.name, m.Digest)
	if m.Config != nil {
		im.c.grants.add(im.name, m.Config.Digest)
	}
	for _, d := range m.Layers {
		if !oci.Foreign(d.MediaType) {
			im.c.grants.add(im.name, d.Digest)
		}
	}
	for _, d := range m.Manifests {
		im.c.grants.add(im.name, d.Digest)
	}
}

// mayServe reports whether the image may serve the stored blob or manifest digest; upstream
// is true when only the upstream's confirmation allowed it (the image's repository does not
// hold it yet). A cache-only context never asks the upstream.
func (im *image) mayServe(ctx context.Context, digest string, manifest bool) (ok, upstream bool) {
	if im.c.grants.has(im.name, digest) {
		return true, false
	}
	if im.holds(ctx, digest, manifest) {
		im.c.grants.add(im.name, digest)
		return true, false
	}
	src := im.source()
	if src == nil || cacheonly.Is(ctx) {
		return false, false
	}
	cl, err := im.c.client(src)
	if err != nil {
		return false, false
	}
	hctx, cancel := context.WithTimeout(ctx, im.c.cfg.UpstreamTimeout)
	defer cancel()
	if manifest {
		desc, err := cl.HeadManifest(hctx, im.upstreamName(), digest, nil)
		if err != nil || desc.Digest != digest {
			return false, false
		}
	} else if _, err := cl.HeadBlob(hctx, im.upstreamName(), digest); err != nil {
		return false, false
	}
	im.c.grants.add(im.name, digest)
	return true, true
}

// holds reports whether the image's repository holds the blob or manifest digest as content of
// its own (a failed lookup holds nothing).
func (im *image) holds(ctx context.Context, digest string, manifest bool) bool {
	held := im.held()
	if held == nil {
		return false
	}
	var ok bool
	var err error
	if manifest {
		ok, err = held.HasManifest(ctx, digest)
	} else {
		ok, err = held.HasBlob(ctx, digest)
	}
	if err != nil {
		im.c.cfg.Logger.Warn("repository lookup failed", "name", im.name, "digest", digest, "err", err)
		return false
	}
	return ok
}
