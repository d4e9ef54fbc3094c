package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// targetKind says how a resolved name is served.
type targetKind int

const (
	targetLocal       targetKind = iota // an ordinary distribution: local content
	targetChild                         // a child the pull-through cache created: PullThrough.Child
	targetPullThrough                   // a name below a pull-through distribution: PullThrough.Image
)

// target is what a repository name resolves to.
type target struct {
	kind targetKind
	// dist is the distribution whose base path is the name (targetLocal, targetChild) or the
	// pull-through distribution the name is below (targetPullThrough).
	dist *models.Distribution
	// upstream is the name below dist's base path (targetPullThrough).
	upstream string
	// repoID and version are the repository version served (targetLocal).
	repoID  string
	version int64
	// parentPrivate is the private flag of the pull-through distribution of a child
	// (targetChild), read with the child.
	parentPrivate bool
}

// private reports whether the target needs an authenticated caller: the distribution's own
// flag (for a name without a child yet, the pull-through distribution's), and for a child its
// pull-through distribution's too, so that making a pull-through distribution private closes
// every image below it. (Pulp copies the flag into a child once, when it creates it.)
func (t *target) private() bool { return t.dist.Private || t.parentPrivate }

// pullThrough reports whether the target is an image of a pull-through distribution: a name
// below it, or a child it created.
func (t *target) pullThrough() bool { return t.kind != targetLocal || t.dist.PullThroughID != nil }

// image resolves name to the Image that serves it, checking that the caller may read it.
// Names that resolve to nothing fail with oci.ErrNameUnknown.
func (r *Registry) image(ctx context.Context, name string, c caller) (Image, error) {
	t, err := r.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := authorize(c, t, name); err != nil {
		return nil, err
	}
	switch t.kind {
	case targetChild:
		d := *t.dist // the cached row is shared; the cache gets its own copy
		return r.cfg.PullThrough.Child(ctx, &d)
	case targetPullThrough:
		d := *t.dist
		return r.cfg.PullThrough.Image(ctx, &d, t.upstream)
	}
	if t.dist.RepositoryVersionID != nil {
		return r.store.Pinned(name, t.repoID, t.version), nil
	}
	return r.store.Image(name, t.repoID, t.version), nil
}

// resolve returns the target of name, from the cache when a recent answer is there.
func (r *Registry) resolve(ctx context.Context, name string) (*target, error) {
	if t, err, ok := r.names.get(name); ok {
		return t, err
	}
	t, err := r.lookup(ctx, name)
	if err == nil || errors.Is(err, oci.ErrNameUnknown) {
		r.names.put(name, t, err)
	}
	return t, err
}

// lookup resolves name from the database; the longest match wins:
//
//  1. a distribution whose base path is name: an ordinary one serves its repository's latest
//     version, or its pinned version (neither: NAME_UNKNOWN); a child of a pull-through
//     distribution goes to PullThrough.Child. A pull-through distribution's own base path
//     is no repository (NAME_UNKNOWN).
//  2. otherwise the pull-through distribution whose base path is the longest whole-segment
//     prefix of name ("docker" is no prefix of "docker-cache/x") serves the rest of the name.
//  3. nothing: NAME_UNKNOWN.
func (r *Registry) lookup(ctx context.Context, name string) (*target, error) {
	prefixes := make([]string, 0, strings.Count(name, "/")+1)
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			prefixes = append(prefixes, name[:i])
		}
	}
	prefixes = append(prefixes, name)
	var dists []models.Distribution
	if err := r.cfg.DB.WithContext(ctx).Where("base_path IN ?", prefixes).Find(&dists).Error; err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	var under *models.Distribution
	for i := range dists {
		d := &dists[i]
		isPT := d.PulpType == models.KindPullThroughDist.PulpType
		switch {
		case d.BasePath == name && isPT:
			return nil, oci.ErrNameUnknown
		case d.BasePath == name:
			return r.served(ctx, d)
		case isPT && (under == nil || len(d.BasePath) > len(under.BasePath)):
			under = d
		}
	}
	if under == nil || r.cfg.PullThrough == nil {
		return nil, oci.ErrNameUnknown
	}
	return &target{kind: targetPullThrough, dist: under, upstream: name[len(under.BasePath)+1:]}, nil
}

// served returns the target of distribution d whose base path is the name asked for.
func (r *Registry) served(ctx context.Context, d *models.Distribution) (*target, error) {
	if d.RepositoryID == nil && d.RepositoryVersionID == nil {
		return nil, oci.ErrNameUnknown
	}
	if d.PullThroughID != nil {
		var parents []bool
		err := r.cfg.DB.WithContext(ctx).Model(&models.Distribution{}).Where("id = ?", *d.PullThroughID).
			Limit(1).Pluck("private", &parents).Error
		if err != nil {
			return nil, fmt.Errorf("resolve %s: pull-through distribution: %w", d.BasePath, err)
		}
		parentPrivate := len(parents) > 0 && parents[0]
		if r.cfg.PullThrough != nil {
			return &target{kind: targetChild, dist: d, parentPrivate: parentPrivate}, nil
		}
		t, err := r.local(ctx, d)
		if t != nil {
			t.parentPrivate = parentPrivate
		}
		return t, err
	}
	return r.local(ctx, d)
}

// local returns the target of an ordinary distribution d: its repository's latest version,
// or its pinned version.
func (r *Registry) local(ctx context.Context, d *models.Distribution) (*target, error) {
	db := r.cfg.DB.WithContext(ctx)
	t := &target{kind: targetLocal, dist: d}
	if d.RepositoryID != nil {
		var repo models.Repository
		err := db.Select("id", "latest_number").Take(&repo, "id = ?", *d.RepositoryID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, oci.ErrNameUnknown
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: repository: %w", d.BasePath, err)
		}
		t.repoID, t.version = repo.ID, repo.LatestNumber
		return t, nil
	}
	var v models.RepositoryVersion
	err := db.Take(&v, "id = ?", *d.RepositoryVersionID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, oci.ErrNameUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s: repository version: %w", d.BasePath, err)
	}
	t.repoID, t.version = v.RepositoryID, v.Number
	return t, nil
}

// maxCachedNames bounds the name cache (a name is at most 255 bytes).
const maxCachedNames = 10000

// nameCache remembers the resolution of names (targets and NAME_UNKNOWN) for ttl, so that
// warm requests do not ask the database which distribution serves them.
type nameCache struct {
	ttl time.Duration
	c   *lru.Cache[string, cachedName]
}

type cachedName struct {
	t   *target
	err error
}

func newNameCache(ttl time.Duration) *nameCache {
	return &nameCache{ttl: ttl, c: lru.New(lru.Options[string, cachedName]{MaxEntries: maxCachedNames, TTL: ttl})}
}

// get returns the cached resolution of name, if there is a fresh one.
func (c *nameCache) get(name string) (*target, error, bool) {
	if c.ttl <= 0 {
		return nil, nil, false
	}
	e, ok := c.c.Get(name)
	return e.t, e.err, ok
}

// put remembers the resolution of name.
func (c *nameCache) put(name string, t *target, err error) {
	if c.ttl > 0 {
		c.c.Add(name, cachedName{t: t, err: err})
	}
}

// forget drops the cached resolution of name (a push just created its distribution).
func (c *nameCache) forget(name string) {
	if c.ttl > 0 {
		c.c.Remove(name)
	}
}
