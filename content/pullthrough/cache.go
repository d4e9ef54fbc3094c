package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/flight"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
)

// Config configures a Cache.
type Config struct {
	DB      *gorm.DB
	Storage storage.Driver
	// Fills fetches blobs from upstreams into Storage, one fill per digest. The content app
	// builds it (with its staging directory and Locker); Close waits for the fills.
	Fills *fill.Fills
	// Clients are the upstream clients of remotes, shared with the content app's other users
	// of remotes; nil means a table of the cache's own (with UpstreamTimeout).
	Clients  *remotes.Clients
	Recorder Recorder
	Logger   *slog.Logger
	// TagFreshness is how long a tag is served without asking the upstream (0 = always ask).
	TagFreshness time.Duration
	// UpstreamTimeout bounds upstream manifest requests; past it the cache answers alone.
	UpstreamTimeout time.Duration
	// NegativeTTL is how long an upstream "does not exist" is remembered (default 10 s).
	NegativeTTL time.Duration
	// RecordQuiet is how long a repository must be quiet before what was pulled is recorded
	// (default 300 ms), so that one pulled image becomes one repository version.
	RecordQuiet time.Duration
	// NewNamesPerMinute bounds the images (repository, remote and distribution) one
	// pull-through distribution creates per minute in this process, with a burst of as many;
	// past it a pull of a new name is answered 429 and creates nothing. Zero means
	// DefaultNewNamesPerMinute; negative means no limit.
	NewNamesPerMinute int
	// BudgetLow is the fraction of an upstream's pull budget (RateLimit-Limit) kept back:
	// when no more is left, a tag that moved upstream is served from the cache (stale) rather
	// than spending a manifest GET on it; only what the cache lacks is fetched, until the
	// budget is spent. Zero keeps nothing back (only a spent budget stops GETs).
	BudgetLow float64
	// Observer, when set, is told of each lookup: served from storage (a hit) or from the
	// upstream (a miss).
	Observer Observer
}

// DefaultNewNamesPerMinute is Config.NewNamesPerMinute's default.
const DefaultNewNamesPerMinute = 60

// Cache serves images behind pull-through distributions.
type Cache struct {
	cfg      Config
	fills    *fill.Fills
	negative *negativeCache
	batch    *batcher
	tags     *tagStates
	// upstreamCalls are the manifest questions in flight to upstreams (a tag's HEAD and maybe
	// GET, a manifest's GET by digest), keyed by flightKey; children are the creations of
	// child objects in flight, by name.
	upstreamCalls flight.Group[tagState]
	children      flight.Group[*childObjects]
	grants        grants
	store         *local.Store                      // what repositories and storage hold
	childObjs     *lru.Cache[string, *childObjects] // objects of children by distribution
	newNames      *lru.Cache[string, *rate.Limiter] // child creation budget by pull-through distribution

	mu      sync.Mutex       // guards newNames
	clients *remotes.Clients // the upstream clients of remotes, shared by settings
}

// New returns a Cache; Close flushes what remains to be recorded.
func New(cfg Config) (*Cache, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Second
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 10 * time.Second
	}
	if cfg.RecordQuiet <= 0 {
		cfg.RecordQuiet = 300 * time.Millisecond
	}
	if cfg.NewNamesPerMinute == 0 {
		cfg.NewNamesPerMinute = DefaultNewNamesPerMinute
	}
	if cfg.Fills == nil {
		return nil, errors.New("pullthrough: Config.Fills is required")
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	clients := cfg.Clients
	if clients == nil {
		clients = remotes.NewClients(cfg.UpstreamTimeout)
	}
	return &Cache{
		cfg:       cfg,
		fills:     cfg.Fills,
		negative:  newNegativeCache(cfg.NegativeTTL),
		batch:     newBatcher(cfg.Recorder, cfg.RecordQuiet, 3*time.Second, cfg.Logger),
		tags:      newTagStates(),
		grants:    newGrants(),
		store:     local.New(cfg.DB, cfg.Storage, cfg.Logger),
		childObjs: lru.New(lru.Options[string, *childObjects]{MaxEntries: 10000, TTL: childTTL}),
		newNames:  lru.New(lru.Options[string, *rate.Limiter]{MaxEntries: 10000}),
		clients:   clients,
	}, nil
}

// Close records what is still pending and waits for running fills.
func (c *Cache) Close() {
	c.batch.close()
	c.fills.Wait()
}

// childObjects are the repository and remote of one pulled image.
type childObjects struct {
	repo   *models.Repository
	remote *models.Remote
}

// Image returns the image upstreamName behind pull-through distribution pt. Its repository,
// remote and distribution (named <base_path>/<upstreamName>, as Pulp names them) are created
// once, even under concurrent first pulls, but only when the upstream has answered for the
// name: pulls of names the upstream does not have leave nothing behind. A cache-only context
// (content/cacheonly) creates nothing: a name without its objects is ErrAuthRequired.
func (c *Cache) Image(ctx context.Context, pt *models.Distribution, upstreamName string) (oci.Image, error) {
	path := pt.BasePath + "/" + upstreamName
	if !oci.ValidName(upstreamName) {
		return nil, oci.ErrNameInvalid.WithDetail("name", path)
	}
	unknown := oci.ErrNameUnknown.WithDetail("name", path)
	// The child may exist already (created by this or another process since the caller
	// looked): serve it, with its recorded tags.
	var child models.Distribution
	if err := c.cfg.DB.WithContext(ctx).Where("base_path = ? AND pull_through_id = ?", path, pt.ID).
		Limit(1).Find(&child).Error; err != nil {
		// Not "no such child": a database that fails must not make a cached name look new.
		return nil, fmt.Errorf("look up %s: %w", path, err)
	} else if child.ID != "" {
		return c.Child(ctx, &child)
	}
	if cacheonly.Is(ctx) {
		// Creating the image is a fill: the caller may only read what is cached.
		return nil, cacheonly.ErrAuthRequired.WithDetail("name", path)
	}
	if pt.RemoteID == nil {
		return nil, unknown
	}
	var ptRemote models.Remote
	if err := c.cfg.DB.WithContext(ctx).Take(&ptRemote, "id = ? AND pulp_type = ?", *pt.RemoteID,
		models.KindPullThroughRemote.PulpType).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, unknown
	} else if err != nil {
		return nil, fmt.Errorf("remote of %s: %w", pt.BasePath, err)
	}
	if !allowed(upstreamName, ptRemote.Includes, ptRemote.Excludes) {
		return nil, unknown
	}
	im := c.newImage(path, nil, nil)
	im.pending = &pendingChild{pt: pt, ptRemote: &ptRemote, upstreamName: upstreamName}
	return im, nil
}

// pendingChild is what an image needs to create its objects on the first upstream answer.
type pendingChild struct {
	pt           *models.Distribution
	ptRemote     *models.Remote
	upstreamName string
}

// ensure creates (or finds) the image's repository, remote and distribution.
func (im *image) ensure(ctx context.Context) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.repo != nil {
		return nil
	}
	p := im.pending
	if p == nil {
		return oci.ErrNameUnknown.WithDetail("name", im.name)
	}
	objs, err, _ := im.c.children.Do(ctx, im.name, func() (*childObjects, error) {
		if !im.c.mayCreate(p.pt.ID) {
			im.c.cfg.Logger.Warn("too many new names pulled through a distribution", "distribution", p.pt.Name, "name", im.name)
			return nil, oci.ErrTooManyNames
		}
		return im.c.ensureChild(context.WithoutCancel(ctx), p.pt, p.ptRemote, p.upstreamName, im.name)
	})
	if err != nil {
		return err
	}
	im.setRepo(objs.repo)
	im.remote = objs.remote
	return nil
}

// mayCreate takes one name from the creation budget of pull-through distribution ptID.
func (c *Cache) mayCreate(ptID string) bool {
	if c.cfg.NewNamesPerMinute < 0 {
		return true
	}
	c.mu.Lock()
	l, ok := c.newNames.Get(ptID)
	if !ok {
		n := c.cfg.NewNamesPerMinute
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
		c.newNames.Add(ptID, l)
	}
	c.mu.Unlock()
	return l.Allow()
}

// childTTL is how long the repository and remote of a child distribution are reused without
// reading them again: the hot path of warm pulls asks the database nothing else.
const childTTL = 2 * time.Second

// Child returns the image served by a distribution the cache created earlier.
func (c *Cache) Child(ctx context.Context, child *models.Distribution) (oci.Image, error) {
	key := child.ID + "@" + child.PulpLastUpdated.String()
	if objs, ok := c.childObjs.Get(key); ok {
		return c.newImage(child.BasePath, objs.repo, objs.remote), nil
	}
	im, err := c.loadChild(ctx, child)
	if err != nil {
		return nil, err
	}
	c.childObjs.Add(key, &childObjects{repo: im.repo, remote: im.remote})
	return im, nil
}

func (c *Cache) loadChild(ctx context.Context, child *models.Distribution) (*image, error) {
	if child.RepositoryID == nil {
		return nil, oci.ErrNameUnknown.WithDetail("name", child.BasePath)
	}
	var repo models.Repository
	if err := c.cfg.DB.WithContext(ctx).Take(&repo, "id = ?", *child.RepositoryID).Error; err != nil {
		if models.IsUnavailable(err) {
			return nil, err // the database failed: 503, not an unknown name
		}
		return nil, oci.ErrNameUnknown.WithDetail("name", child.BasePath)
	}
	var remote *models.Remote
	if child.RemoteID != nil {
		var r models.Remote
		if err := c.cfg.DB.WithContext(ctx).Take(&r, "id = ?", *child.RemoteID).Error; err == nil {
			remote = &r
		}
	}
	return c.newImage(child.BasePath, &repo, remote), nil
}

func (c *Cache) ensureChild(ctx context.Context, pt *models.Distribution, ptRemote *models.Remote, upstreamName, path string) (*childObjects, error) {
	db := c.cfg.DB.WithContext(ctx)
	unknown := oci.ErrNameUnknown.WithDetail("name", path)
	objs := &childObjects{}
	start := time.Now().Add(-time.Second)
	create := func() error {
		return db.Transaction(func(tx *gorm.DB) error {
			var repo models.Repository
			err := tx.Take(&repo, "name = ?", path).Error
			switch {
			case errors.Is(err, gorm.ErrRecordNotFound):
				one := int64(1)
				repo = models.Repository{PulpType: models.KindContainerRepository.PulpType, Name: path,
					RetainRepoVersions: &one, PullThrough: true}
				if err := models.CreateRepository(tx, &repo); err != nil {
					return err
				}
			case err != nil:
				return err
			case !repo.PullThrough:
				return unknown
			}
			leftover := repo.PulpCreated.Before(start)
			var remote models.Remote
			err = tx.Take(&remote, "name = ?", path).Error
			want := childRemote(ptRemote, path, upstreamName)
			switch {
			case errors.Is(err, gorm.ErrRecordNotFound) && leftover:
				// A repository whose remote is gone holds content of an unknown origin.
				c.cfg.Logger.Warn("not adopting a pull-through repository without its remote", "name", path)
				return unknown
			case errors.Is(err, gorm.ErrRecordNotFound):
				remote = want
				if err := tx.Create(&remote).Error; err != nil {
					return err
				}
			case err != nil:
				return err
			case !sameUpstream(&remote, &want, c.cfg.UpstreamTimeout):
				// Left behind by another pull-through distribution, or someone's own remote:
				// its URL and credentials are not this distribution's to use.
				c.cfg.Logger.Warn("not adopting a remote that does not match the pull-through remote", "name", path)
				return unknown
			}
			var dist models.Distribution
			err = tx.Take(&dist, "base_path = ? OR name = ?", path, path).Error
			switch {
			case errors.Is(err, gorm.ErrRecordNotFound):
				now := models.Now()
				dist = models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType,
					PulpCreated: now, PulpLastUpdated: now, Name: path, BasePath: path, RepositoryID: &repo.ID,
					RemoteID: &remote.ID, PulpLabels: models.Labels{}, Private: pt.Private, NamespaceID: pt.NamespaceID,
					PullThroughID: &pt.ID}
				if err := tx.Create(&dist).Error; err != nil {
					return err
				}
			case err != nil:
				return err
			case dist.PullThroughID == nil || *dist.PullThroughID != pt.ID:
				return unknown
			}
			objs.repo, objs.remote = &repo, &remote
			return nil
		})
	}
	err := create()
	if err != nil && !errors.Is(err, unknown) && errors.Is(err, gorm.ErrDuplicatedKey) {
		// Another process created them at the same moment: read what it made.
		err = create()
	}
	if err != nil {
		if _, ok := err.(*oci.Error); ok {
			return nil, err
		}
		c.cfg.Logger.Warn("creating pull-through objects failed", "name", path, "err", err)
		return nil, unknown
	}
	return objs, nil
}

// sameUpstream reports whether two remotes pull the same upstream name with the same settings
// (URL, credentials, TLS, proxy, headers).
func sameUpstream(a, b *models.Remote, timeout time.Duration) bool {
	return a.PulpType == b.PulpType && a.UpstreamName == b.UpstreamName &&
		remotes.SettingsKey(remotes.Config(a, timeout)) == remotes.SettingsKey(remotes.Config(b, timeout))
}

// childRemote copies a pull-through remote's settings into the remote of one image.
func childRemote(pt *models.Remote, path, upstreamName string) models.Remote {
	r := *pt
	now := models.Now()
	r.ID, r.PulpType, r.PulpCreated, r.PulpLastUpdated = models.NewID(), models.KindContainerRemote.PulpType, now, now
	r.Name, r.UpstreamName, r.Policy = path, upstreamName, "on_demand"
	r.Includes, r.Excludes, r.Sigstore = nil, nil, nil
	if r.PulpLabels == nil {
		r.PulpLabels = models.Labels{}
	}
	return r
}

// client returns the upstream client for remote. Remotes with the same settings (every image
// pulled through one pull-through remote) share one client, so they share its connections and
// its token cache.
func (c *Cache) client(remote *models.Remote) (*upstream.Client, error) {
	rc, err := c.clients.For(remote)
	return rc.Client, err
}

// upstreamError maps an upstream failure to the registry error a client sees.
func upstreamError(err error, notFound *oci.Error) error { return remotes.Error(err, notFound) }
