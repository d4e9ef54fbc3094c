// Package content is the content app: the OCI/Docker registry API (/v2/) over pulpgo's
// distributions, with the pull-through cache behind it. Its parts live in subpackages:
// registry (HTTP handlers), pullthrough (the cache), upstream (the upstream registry client),
// ondemand (blobs that on_demand/streamed syncs recorded), fill (the fill engine), remotes
// (upstream clients by remote), storage (blob storage), htpasswd (pull-only users), cacheonly
// (pulls that may not fill the cache) and oci (what they share).
package content

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/htpasswd"
	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/lastpull"
	"github.com/pulpgo/pulpgo/content/metrics"
	"github.com/pulpgo/pulpgo/content/ondemand"
	"github.com/pulpgo/pulpgo/content/pullthrough"
	"github.com/pulpgo/pulpgo/content/registry"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/content/upstreamstatus"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// Dispatcher dispatches the tasks that record pulled content.
type Dispatcher interface {
	Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error)
}

// Config is what the content app needs.
type Config struct {
	DB *gorm.DB
	// Storage holds blobs and manifests.
	Storage storage.Driver
	// LocalDir is the local directory where fills stage and uploads keep their bytes: for a
	// storage.Filesystem, empty means its root (so commits are renames); object storage
	// needs one.
	LocalDir string
	// StorageRedirect answers GETs of stored blobs with a 307 to a presigned URL when the
	// storage can make one (registry.Config.StorageRedirect).
	StorageRedirect bool
	AdminPassword   string
	// Logins, when set, checks the registry's credentials (shared with the API of the same
	// process); nil: the registry's own.
	Logins          *models.Logins
	Logger          *slog.Logger
	TagFreshness    time.Duration
	UpstreamTimeout time.Duration
	// NewNamesPerMinute bounds the images one pull-through distribution creates per minute
	// (0: the default, 60; negative: no limit).
	NewNamesPerMinute int
	Tasks             Dispatcher
	// Tokens, when set, turns on token authentication (GET /token/ and Bearer challenges on
	// /v2/); nil keeps Basic authentication only. See TokenKey.
	Tokens *token.Key
	// TokenExpiration is how long issued tokens are valid (0: 5 minutes).
	TokenExpiration time.Duration
	// ContentOrigin, when set, is the URL clients reach the registry at, whose /token/ is
	// the token realm.
	ContentOrigin string
	// Redis, when set, coordinates content processes so that each blob is fetched once across
	// all of them (a lock per digest).
	Redis redis.UniversalClient
	// FillResumes is how many times a blob fill resumes after its upstream connection broke
	// mid-blob (0: fill.DefaultResumes; negative: never).
	FillResumes int
	// Mirrors maps upstream hosts to the pull-through distributions that serve unprefixed
	// names as a registry mirror (registry.Config.Mirrors).
	Mirrors map[string]string
	// UploadTimeout is how long a blob upload may go without a write before it is swept
	// (0: registry.DefaultUploadTimeout).
	UploadTimeout time.Duration
	// Htpasswd, when set, is an htpasswd file of bcrypt entries: users who may pull only
	// (registry.Config.PullUsers), re-read when it changes. A missing file fails New.
	Htpasswd string
	// FillsRequireAuth makes anonymous pulls cache-only (registry.Config.FillsRequireAuth).
	FillsRequireAuth bool
	// UpstreamBudgetLow is the fraction of an upstream's pull budget the cache keeps back
	// (pullthrough.Config.BudgetLow).
	UpstreamBudgetLow float64
	// BreakerFailures and BreakerCooldown configure the circuit breaker of each upstream host
	// (0: upstream.DefaultBreakerFailures and DefaultBreakerCooldown).
	BreakerFailures int
	BreakerCooldown time.Duration
	// Metrics, when set, are the process's metrics: the app's requests, cache lookups,
	// upstream requests, fills, budgets and breakers are recorded there.
	Metrics *metrics.Metrics
	// LastPullFlush is how often the times of pulls noted in memory are written to the
	// database (content/lastpull; 0: lastpull.DefaultFlushInterval).
	LastPullFlush time.Duration
}

// App is the content app: the registry handler and the cache behind it.
type App struct {
	http.Handler
	reg       *registry.Registry
	cache     *pullthrough.Cache
	transient *fill.Transient
	staging   *fill.Staging
	fills     *fill.Fills
	uses      *inuse.Tracker
	status    *upstreamstatus.Publisher
	pulls     *lastpull.Tracker
}

// New builds the content app.
func New(cfg Config) (*App, error) {
	var pullUsers registry.PullUsers
	if cfg.Htpasswd != "" {
		f, err := htpasswd.Open(cfg.Htpasswd, htpasswd.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("--htpasswd: %w", err)
		}
		pullUsers = f
	}
	local, err := LocalDir(cfg.Storage, cfg.LocalDir)
	if err != nil {
		return nil, err
	}
	fills, staging, err := NewFills(cfg.Storage, local, cfg.Redis, cfg.Logger, append(FillOptions(cfg.Metrics), FillResumes(cfg.FillResumes))...)
	if err != nil {
		return nil, err
	}
	transient, err := fill.NewTransient(staging, cfg.Logger, fill.WithRetryable(upstream.IsUnavailable), FillResumes(cfg.FillResumes))
	if err != nil {
		_ = staging.Close()
		return nil, err
	}
	// One table of upstream clients: a pull-through remote and an on_demand remote of the same
	// registry and credentials share connections and tokens.
	clients := remotes.NewClients(upstreamTimeout(cfg.UpstreamTimeout))
	var cacheObserver pullthrough.Observer
	if cfg.Metrics != nil {
		clients.Observe(cfg.Metrics.Upstream())
		cacheObserver = cfg.Metrics.Cache()
	}
	remoteBlobs, err := ondemand.New(ondemand.Config{DB: cfg.DB, Clients: clients, Fills: fills, Transient: transient,
		UpstreamTimeout: cfg.UpstreamTimeout, Logger: cfg.Logger})
	if err != nil {
		_ = transient.Close()
		_ = staging.Close()
		return nil, err
	}
	cache, err := pullthrough.New(pullthrough.Config{Fills: fills, Clients: clients,
		DB: cfg.DB, Storage: cfg.Storage,
		Recorder: taskRecorder{tasks: cfg.Tasks}, Logger: cfg.Logger,
		TagFreshness: cfg.TagFreshness, UpstreamTimeout: cfg.UpstreamTimeout,
		NewNamesPerMinute: cfg.NewNamesPerMinute, BudgetLow: cfg.UpstreamBudgetLow,
		Observer: cacheObserver,
	})
	if err != nil {
		_ = transient.Close()
		_ = staging.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Blobs served are held while they are read and touched as used (an orphan cleanup's
	// protection time counts from their last use).
	uses := inuse.New(cfg.Redis, log, inuse.WithTouch(func(digest string) {
		if err := models.TouchDigest(cfg.DB, digest); err != nil {
			log.Warn("marking content as used", "digest", digest, "err", err)
		}
	}))
	// Pull times are noted in memory and written in batches, for the eviction of a quota.
	pulls := lastpull.New(cfg.DB, log, cfg.LastPullFlush)
	reg, err := registry.New(registry.Config{DB: cfg.DB, Storage: cfg.Storage, PullThrough: cache,
		RemoteBlobs: remoteBlobs, AdminPassword: cfg.AdminPassword, Logins: cfg.Logins, Logger: cfg.Logger, Uses: uses,
		Pulls:  pulls,
		Tokens: cfg.Tokens, TokenExpiration: cfg.TokenExpiration, ContentOrigin: cfg.ContentOrigin,
		UploadDir: filepath.Join(local, uploadsDir), StorageRedirect: cfg.StorageRedirect, UploadTimeout: cfg.UploadTimeout,
		Mirrors: cfg.Mirrors, Recorder: tasks.ManifestRecorder{Store: cfg.Storage},
		PullUsers: pullUsers, FillsRequireAuth: cfg.FillsRequireAuth})
	if err != nil {
		pulls.Close()
		uses.Close()
		cache.Close()
		_ = transient.Close()
		_ = staging.Close()
		return nil, err
	}
	// Budgets and breakers are logged and published for the API's upstream_status/ (before
	// the first pull asks the clients table for a client).
	status := upstreamstatus.New(cfg.DB, log, cfg.UpstreamBudgetLow)
	breakers := upstream.NewBreakers(cfg.BreakerFailures, cfg.BreakerCooldown)
	onBreaker, onBudget := status.Breaker, status.Budget
	var handler http.Handler = reg
	if m := cfg.Metrics; m != nil {
		onBreaker = func(host string, st upstream.BreakerStatus) {
			status.Breaker(host, st)
			m.Upstream().Breaker(host, breakerState(st.State))
		}
		onBudget = func(key, host string, b upstream.Budget) {
			status.Budget(key, host, b)
			m.Upstream().Budget(key, host, b.Limit, b.Remaining)
		}
		handler = m.Requests(metrics.AppContent).Instrument(reg, registry.Route)
	}
	breakers.Watch(onBreaker)
	clients.Watch(breakers, onBudget)
	return &App{Handler: handler, reg: reg, cache: cache, transient: transient, staging: staging, fills: fills, uses: uses,
		status: status, pulls: pulls}, nil
}

// breakerState is the metric value of a breaker state.
func breakerState(state string) int {
	switch state {
	case upstream.BreakerOpen:
		return metrics.BreakerOpen
	case upstream.BreakerHalfOpen:
		return metrics.BreakerHalfOpen
	}
	return metrics.BreakerClosed
}

// upstreamTimeout is the upstream clients' request timeout: d, or the pull-through cache's
// default when d is not set.
func upstreamTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Second
	}
	return d
}

// FillResumes is the fill option of Config.FillResumes: n resumes, the default for 0, none
// for a negative n.
func FillResumes(n int) fill.Option {
	switch {
	case n == 0:
		n = fill.DefaultResumes
	case n < 0:
		n = 0
	}
	return fill.WithResumes(n, fill.DefaultResumeBackoff)
}

// LocalDir returns where the fills and uploads of store keep their local bytes: dir, or when
// dir is empty the root of a storage.Filesystem (commits are then renames).
func LocalDir(store storage.Driver, dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if fs, ok := store.(*storage.Filesystem); ok {
		return fs.Dir(), nil
	}
	return "", fmt.Errorf("storage %T needs a local directory for fills and uploads", store)
}

// NewFills returns the fill engine of one process over store, with its own staging directory
// below local (close it when the process ends): with rdb set, fills take a Redis lock per
// digest, so that every process sharing the storage (content apps, workers syncing) fetches
// a blob once. extra options (FillOptions, FillResumes) come after the defaults.
func NewFills(store storage.Driver, local string, rdb redis.UniversalClient, logger *slog.Logger, extra ...fill.Option) (*fill.Fills, *fill.Staging, error) {
	// A fill resumes after the upstream failures a retry can cure (a cut connection, an idle
	// timeout, a 5xx), never after a protocol violation or a 404.
	opts := []fill.Option{fill.WithRetryable(upstream.IsUnavailable)}
	if rdb != nil {
		opts = append(opts, fill.WithLocker(redisLocker{rdb: rdb, ttl: fillLockTTL}))
	}
	staging, err := fill.OpenStaging(filepath.Join(local, stagingRoot))
	if err != nil {
		return nil, nil, err
	}
	return fill.New(store, staging, logger, append(opts, extra...)...), staging, nil
}

// FillOptions are the options of a fill engine that reports to the process's metrics m (none
// when m is nil): the content app's, and the worker's own.
func FillOptions(m *metrics.Metrics) []fill.Option {
	if m == nil {
		return nil
	}
	return []fill.Option{fill.WithObserver(m.Fills())}
}

// Fills is the app's fill engine, for the worker of the same process to share (a sync and a
// pull of one blob then make one upstream request).
func (a *App) Fills() *fill.Fills { return a.fills }

// Uses is the app's tracker of blobs being read, for the worker of the same process to ask.
func (a *App) Uses() *inuse.Tracker { return a.uses }

// stagingRoot is the directory below the storage root where the content processes keep their
// fill.Staging directories: on the storage's filesystem, so that a fill's commit is a rename.
const stagingRoot = ".fills"

// uploadsDir is the directory below the storage root where blob uploads keep their bytes,
// shared by every content process of the storage (an upload's requests may reach any of
// them), on the storage's filesystem so that finishing an upload is a rename.
const uploadsDir = ".uploads"

// Close records what the cache still holds, waits for running fills and removes this
// process's staging directory.
func (a *App) Close() {
	a.reg.Close()
	a.cache.Close()
	_ = a.transient.Close()
	_ = a.staging.Close()
	a.uses.Close()
	a.status.Close()
	a.pulls.Close()
}

// Mux sends registry paths (/v2/...) to reg and everything else to api, so that one port
// serves both, as `pulpgo serve` does.
func Mux(reg, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == "/token/" || r.URL.Path == "/token" {
			reg.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
