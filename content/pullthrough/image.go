package pullthrough

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// image is one pulled image. It wraps the local image of its repository (what the repository
// holds, content/local) and adds the upstream side: the remote it is pulled from (nil when the
// remote was deleted: then only what is cached is served), the freshness of tags, fills,
// recording and grants.
type image struct {
	c       *Cache
	name    string
	pending *pendingChild // set until the objects of a first pull exist

	mu     sync.Mutex
	repo   *models.Repository
	remote *models.Remote
	local  *local.Image // the repository's latest version; nil until the repository exists
}

var _ oci.Image = (*image)(nil)

func (c *Cache) newImage(name string, repo *models.Repository, remote *models.Remote) *image {
	im := &image{c: c, name: name, remote: remote}
	im.setRepo(repo)
	return im
}

// setRepo sets the image's repository; im.mu must be held, or im not yet shared.
func (im *image) setRepo(repo *models.Repository) {
	im.repo = repo
	if repo != nil {
		im.local = im.c.store.Latest(im.name, repo.ID)
	}
}

// held is the local image of the repository, nil before a first pull created it.
func (im *image) held() *local.Image {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.local
}

// Name is the name the client pulls.
func (im *image) Name() string { return im.name }

func (im *image) upstreamName() string {
	if r := im.source(); r != nil && r.UpstreamName != "" {
		return r.UpstreamName
	}
	if im.pending != nil {
		return im.pending.upstreamName
	}
	return ""
}

// source is the remote to pull from: the image's own, or before it exists the pull-through
// remote whose settings it will copy.
func (im *image) source() *models.Remote {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.remote != nil {
		return im.remote
	}
	if im.pending != nil {
		return im.pending.ptRemote
	}
	return nil
}

// repoID is the image's repository id, "" before a first pull created it.
func (im *image) repoID() string {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.repo == nil {
		return ""
	}
	return im.repo.ID
}

// Tags lists the tags recorded in the repository and those pulled but not yet recorded.
func (im *image) Tags(ctx context.Context) ([]string, error) {
	held := im.held()
	if held == nil {
		return []string{}, nil
	}
	names, err := held.Tags(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, n := range im.c.tags.names(im.repoID()) {
		if !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	sort.Strings(names)
	return names, nil
}

// Manifest serves a manifest by tag or digest: from storage when it can, from the upstream
// when it must.
func (im *image) Manifest(ctx context.Context, ref string) (*oci.Manifest, error) {
	if oci.IsDigest(ref) {
		return im.manifestByDigest(ctx, ref)
	}
	return im.manifestByTag(ctx, ref)
}

func (im *image) manifestByDigest(ctx context.Context, digest string) (*oci.Manifest, error) {
	if !oci.ValidDigest(digest) {
		return nil, oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	unknown := oci.ErrManifestUnknown.WithDetail("reference", digest)
	if m, err := im.c.store.Manifest(ctx, digest); err == nil {
		ok, confirmed := im.mayServe(ctx, digest, true)
		if !ok {
			return nil, im.uncached(ctx, unknown)
		}
		if confirmed || im.repoID() == "" {
			// Stored for another image, or for this one by a pull that could not create its
			// objects (the creation limit): it becomes content of this one, which needs them.
			if err := im.ensure(ctx); err != nil {
				return nil, err
			}
			im.c.batch.add(im.repoID(), RecordItem{Digest: digest})
		}
		if confirmed {
			im.grantManifest(m)
		}
		im.c.cfg.Observer.CacheLookup(LookupManifest, true)
		return m, nil
	}
	src := im.source()
	if src == nil {
		return nil, unknown
	}
	if cacheonly.Is(ctx) {
		return nil, cacheonly.ErrAuthRequired.WithDetail("reference", digest)
	}
	key, err := im.flightKey(src, digest)
	if err != nil {
		return nil, err
	}
	if im.c.negative.has(key) {
		return nil, unknown
	}
	m, err, joined := im.c.upstreamCalls.Do(ctx, key, func() (tagState, error) {
		// Every client of this digest waits for this fetch: it must not end with the one that
		// started it (fetchManifest bounds it with the upstream timeout).
		_, err := im.fetchManifest(context.WithoutCancel(ctx), digest, digest, 0)
		return tagState{digest: digest}, err
	})
	if joined {
		im.c.cfg.Observer.FlightJoined(LookupManifest)
	}
	if err != nil {
		if errors.Is(err, oci.ErrManifestUnknown) {
			im.c.negative.add(key)
		}
		return nil, err
	}
	if err := im.ensure(ctx); err != nil {
		return nil, err
	}
	im.c.cfg.Observer.CacheLookup(LookupManifest, false)
	im.c.batch.add(im.repoID(), RecordItem{Digest: m.digest})
	return im.c.store.Manifest(ctx, digest)
}

// fetchManifest GETs ref from the upstream, checks it against want (when ref is a digest)
// and stores it byte for byte. The GET is taken from the upstream's pull budget first, so
// that more than the fraction keep of it stays; when it cannot be, the error wraps
// errBudgetKept.
func (im *image) fetchManifest(ctx context.Context, ref, want string, keep float64) (*oci.Manifest, error) {
	cl, err := im.c.client(im.source())
	if err != nil {
		return nil, err
	}
	release, ok := cl.ReserveManifestGet(keep)
	if !ok {
		return nil, budgetError(cl.Budget(), ref)
	}
	defer release()
	// The budget bounds the upstream GET only: storing the manifest (a request to object
	// storage, maybe) is not the upstream's time.
	uctx, cancel := context.WithTimeout(ctx, im.c.cfg.UpstreamTimeout)
	defer cancel()
	body, desc, err := cl.GetManifest(uctx, im.upstreamName(), ref, oci.ManifestMediaTypes)
	if err != nil {
		return nil, upstreamError(err, oci.ErrManifestUnknown.WithDetail("reference", ref))
	}
	// The digest is the one computed from the bytes (for signed schema 1, from the payload),
	// whatever the upstream's Docker-Content-Digest says.
	m, err := oci.ParseManifest(body, desc.MediaType)
	if err != nil {
		return nil, err
	}
	if want != "" && m.Digest != want {
		im.c.cfg.Logger.Warn("upstream manifest does not have the digest asked for", "name", im.name, "want", want, "computed", m.Digest)
		return nil, oci.ErrUpstreamBad
	}
	if err := im.c.store.PutManifest(ctx, m); err != nil {
		return nil, err
	}
	im.grantManifest(m)
	return m, nil
}

func (im *image) manifestByTag(ctx context.Context, tag string) (*oci.Manifest, error) {
	unknown := oci.ErrManifestUnknown.WithDetail("reference", tag)
	if !oci.ValidTag(tag) {
		return nil, unknown
	}
	var st tagState
	known := false
	if held := im.held(); held != nil {
		st, known = im.c.tags.get(im.repoID(), tag)
		if !known {
			if d, err := held.TagDigest(ctx, tag); err == nil {
				st, known = tagState{digest: d}, true
			}
		}
	}
	if known && im.c.cfg.TagFreshness > 0 && time.Since(st.checked) < im.c.cfg.TagFreshness {
		if m, err := im.c.store.Manifest(ctx, st.digest); err == nil {
			im.c.cfg.Observer.CacheLookup(LookupTagFresh, true)
			return m, nil
		}
	}
	if cacheonly.Is(ctx) {
		// No HEAD, however old the tag: what the cache has, or a challenge.
		if known {
			if m, err := im.c.store.Manifest(ctx, st.digest); err == nil {
				im.c.cfg.Observer.CacheLookup(LookupTagFresh, true)
				return m, nil
			}
		}
		return nil, cacheonly.ErrAuthRequired.WithDetail("reference", tag)
	}
	src := im.source()
	if src == nil {
		if known {
			return im.c.store.Manifest(ctx, st.digest)
		}
		return nil, unknown
	}
	negKey, err := im.flightKey(src, tag)
	if err != nil {
		return nil, err
	}
	if !known && im.c.negative.has(negKey) {
		return nil, unknown
	}
	// The call is shared by every client of the tag: it must not end with the one that
	// started it (refreshTag bounds its upstream requests with the upstream timeout).
	fresh, err, joined := im.c.upstreamCalls.Do(ctx, negKey, func() (tagState, error) {
		return im.refreshTag(context.WithoutCancel(ctx), tag, st, known)
	})
	if joined {
		im.c.cfg.Observer.FlightJoined(LookupTagRevalidated)
	}
	if err != nil {
		if known {
			// The upstream failed, throttled or timed out: serve what the cache has.
			if m, serr := im.c.store.Manifest(ctx, st.digest); serr == nil {
				// An open breaker was logged when it opened: its refusals are not news.
				level := slog.LevelInfo
				if errors.Is(err, oci.ErrUpstreamUnavailable) {
					level = slog.LevelDebug
				}
				im.c.cfg.Logger.Log(ctx, level, "upstream failed, serving cached tag", "name", im.name, "tag", tag, "err", err)
				im.c.cfg.Observer.CacheLookup(LookupTagRevalidated, true)
				return m, nil
			}
		}
		if errors.Is(err, oci.ErrManifestUnknown) {
			im.c.negative.add(negKey)
			return nil, unknown
		}
		return nil, err
	}
	m, err := im.c.store.Manifest(ctx, fresh.digest)
	if err == nil {
		im.grantManifest(m)
		im.c.cfg.Observer.CacheLookup(LookupTagRevalidated, known && fresh.digest == st.digest)
	}
	return m, err
}

// refreshTag asks the upstream where tag points now: one HEAD, and a GET only for a digest
// the cache does not hold.
func (im *image) refreshTag(ctx context.Context, tag string, st tagState, known bool) (tagState, error) {
	cl, err := im.c.client(im.source())
	if err != nil {
		return tagState{}, err
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), im.c.cfg.UpstreamTimeout)
	defer cancel()
	desc, err := cl.HeadManifest(hctx, im.upstreamName(), tag, oci.ManifestMediaTypes)
	if err != nil {
		return tagState{}, upstreamError(err, oci.ErrManifestUnknown.WithDetail("reference", tag))
	}
	digest := desc.Digest
	if _, serr := im.c.store.Manifest(ctx, digest); serr != nil {
		// A tag the cache holds keeps the budget's low fraction back; a new one needs its GET.
		keep := 0.0
		if known {
			keep = im.c.cfg.BudgetLow
		}
		m, err := im.fetchManifest(context.WithoutCancel(ctx), tag, "", keep)
		if errors.Is(err, errBudgetKept) && known {
			if _, serr := im.c.store.Manifest(ctx, st.digest); serr == nil {
				im.c.cfg.Logger.Info("upstream pull budget low: serving a moved tag from the cache",
					"name", im.name, "tag", tag, "cached", st.digest, "upstream", digest)
				now := time.Now()
				im.c.tags.set(im.repoID(), tag, tagState{digest: st.digest, checked: now})
				return tagState{digest: st.digest, checked: now}, nil
			}
		}
		if err != nil {
			return tagState{}, err
		}
		digest = m.Digest
	}
	if err := im.ensure(ctx); err != nil {
		return tagState{}, err
	}
	now := time.Now()
	im.c.grants.add(im.name, digest)
	im.c.tags.set(im.repoID(), tag, tagState{digest: digest, checked: now})
	if !known || st.digest != digest {
		im.c.batch.add(im.repoID(), RecordItem{Digest: digest, Tag: tag})
	}
	return tagState{digest: digest, checked: now}, nil
}

// uncached is the error of content this image may not serve from the cache: unknown, or in a
// cache-only context a challenge (its upstream, which a user's pull would ask, may have it).
func (im *image) uncached(ctx context.Context, unknown *oci.Error) error {
	if cacheonly.Is(ctx) && im.source() != nil {
		e := *cacheonly.ErrAuthRequired
		e.Detail = unknown.Detail
		return &e
	}
	return unknown
}

// flightKey names one upstream question of the image: everything that changes its answer
// (the remote's settings and credentials, the image, the upstream name, the reference). It
// keys the single flights of manifest requests and the negative cache.
func (im *image) flightKey(src *models.Remote, ref string) (string, error) {
	rc, err := im.c.clients.For(src)
	if err != nil {
		return "", err
	}
	return rc.Key + "|" + im.name + "|" + im.upstreamName() + "|" + ref, nil
}

// Blob serves a stored blob, or starts (or joins) the one fill of it from the upstream. A blob
// stored, or being fetched, for another image is served only once this image may have it
// (mayServe): its own fill delivered it, its repository holds it, or its upstream confirms it.
func (im *image) Blob(ctx context.Context, digest string, head bool) (*oci.BlobContent, error) {
	unknown := oci.ErrBlobUnknown.WithDetail("digest", digest)
	if _, err := storage.BlobPath(digest); err != nil {
		return nil, oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	if bc, err := im.c.store.Blob(ctx, digest); err == nil {
		if ok, _ := im.mayServe(ctx, digest, false); !ok {
			if bc.File != nil {
				_ = bc.File.Close()
			}
			return nil, im.uncached(ctx, unknown)
		}
		im.c.cfg.Observer.CacheLookup(LookupBlob, true)
		return bc, nil
	}
	src := im.source()
	if src == nil {
		return nil, unknown
	}
	if cacheonly.Is(ctx) {
		return im.joinOnly(ctx, src, digest, head)
	}
	cl, err := im.c.client(src)
	if err != nil {
		return nil, err
	}
	name := im.upstreamName()
	owner, err := im.flightKey(src, "")
	if err != nil {
		return nil, err
	}
	im.c.cfg.Observer.CacheLookup(LookupBlob, false)
	if head {
		if f := im.c.fills.Running(digest); f != nil {
			if f.Owner() != owner {
				if ok, _ := im.mayServe(ctx, digest, false); !ok {
					return nil, unknown
				}
			}
			if size, err := f.Size(ctx); err == nil {
				return &oci.BlobContent{Digest: digest, Size: size}, nil
			}
		}
		hctx, cancel := context.WithTimeout(ctx, im.c.cfg.UpstreamTimeout)
		defer cancel()
		size, err := cl.HeadBlob(hctx, name, digest)
		if err != nil {
			return nil, upstreamError(err, unknown)
		}
		return &oci.BlobContent{Digest: digest, Size: size}, nil
	}
	open := func(ctx context.Context, off int64) (io.ReadCloser, int64, error) {
		return cl.GetBlob(ctx, name, digest, off)
	}
	f, size, err := im.fill(ctx, digest, owner, open)
	if err != nil {
		return nil, upstreamError(err, unknown)
	}
	read := func(ctx context.Context, off int64) io.ReadCloser {
		return remotes.FailReader(f.NewReader(ctx, off), f.Err, unknown)
	}
	return &oci.BlobContent{Digest: digest, Size: size, Open: read}, nil
}

// joinOnly serves, in a cache-only context, a blob that is not stored yet but that a fill of
// this very image (a user's pull) is fetching: following it asks the upstream nothing more.
// Any other blob is ErrAuthRequired.
func (im *image) joinOnly(ctx context.Context, src *models.Remote, digest string, head bool) (*oci.BlobContent, error) {
	needAuth := cacheonly.ErrAuthRequired.WithDetail("digest", digest)
	owner, err := im.flightKey(src, "")
	if err != nil {
		return nil, err
	}
	f := im.c.fills.Running(digest)
	if f == nil || f.Owner() != owner {
		return nil, needAuth
	}
	size, err := f.Size(ctx)
	if err != nil {
		return nil, needAuth
	}
	if head {
		return &oci.BlobContent{Digest: digest, Size: size}, nil
	}
	read := func(ctx context.Context, off int64) io.ReadCloser {
		return remotes.FailReader(f.NewReader(ctx, off), f.Err, oci.ErrBlobUnknown.WithDetail("digest", digest))
	}
	return &oci.BlobContent{Digest: digest, Size: size, Open: read}, nil
}

// fill starts the fill of digest from this image's upstream, or joins the one running, and
// waits for the blob's size. A joined fill (its Source is another image's) is read only once
// mayServe allows it; if it fails, this image tries once with its own Source, so that another
// image's upstream errors are not this one's. The grant of the digest is recorded when this
// image's own fill has verified the bytes it fetched, before its readers get their end.
func (im *image) fill(ctx context.Context, digest, owner string, open fill.Source) (*fill.Fill, int64, error) {
	for attempt := 0; ; attempt++ {
		f, started := im.c.fills.Claim(ctx, digest, owner, open, func() { im.c.grants.add(im.name, digest) })
		switch {
		case started:
		case f.Owner() == owner:
			// Another client of this image started it: the same upstream answers for both.
		default:
			if ok, _ := im.mayServe(ctx, digest, false); !ok {
				return nil, 0, oci.ErrBlobUnknown.WithDetail("digest", digest)
			}
		}
		size, err := f.Size(ctx)
		if err != nil {
			if ferr := f.Err(); ferr != nil {
				if !started && attempt == 0 {
					continue
				}
				return nil, 0, ferr
			}
			return nil, 0, err
		}
		if started && !f.Fetched() {
			// Another process stored it between our look and the fill: not our upstream's word.
			if ok, _ := im.mayServe(ctx, digest, false); !ok {
				return nil, 0, oci.ErrBlobUnknown.WithDetail("digest", digest)
			}
		}
		return f, size, nil
	}
}
