// Package content is the content app: the OCI/Docker registry API (/v2/) over pulpgo's
// distributions, with the pull-through cache behind it. Its parts live in subpackages:
// registry (HTTP handlers), pullthrough (the cache), upstream (the upstream registry client),
// fill (the fill engine), storage (blob storage) and oci (what they share).
package content

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/pullthrough"
	"github.com/pulpgo/pulpgo/content/registry"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// Dispatcher dispatches the tasks that record pulled content.
type Dispatcher interface {
	Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error)
}

// Config is what the content app needs.
type Config struct {
	DB *gorm.DB
	// Storage holds blobs and manifests; StorageDir is its root (fills stage below it).
	Storage         *storage.Filesystem
	AdminPassword   string
	Logger          *slog.Logger
	TagFreshness    time.Duration
	UpstreamTimeout time.Duration
	// NewNamesPerMinute bounds the images one pull-through distribution creates per minute
	// (0: the default, 60; negative: no limit).
	NewNamesPerMinute int
	Tasks             Dispatcher
	// Redis, when set, coordinates content processes so that each blob is fetched once across
	// all of them (a lock per digest).
	Redis redis.UniversalClient
}

// App is the content app: the registry handler and the cache behind it.
type App struct {
	http.Handler
	cache   *pullthrough.Cache
	staging *fill.Staging
	uses    *inuse.Tracker
}

// New builds the content app.
func New(cfg Config) (*App, error) {
	var fillOpts []fill.Option
	if cfg.Redis != nil {
		fillOpts = append(fillOpts, fill.WithLocker(redisLocker{rdb: cfg.Redis, ttl: fillLockTTL}))
	}
	staging, err := fill.OpenStaging(filepath.Join(cfg.Storage.Dir(), stagingRoot))
	if err != nil {
		return nil, err
	}
	fills := fill.New(cfg.Storage, staging, cfg.Logger, fillOpts...)
	cache, err := pullthrough.New(pullthrough.Config{Fills: fills,
		DB: cfg.DB, Storage: cfg.Storage,
		Recorder: taskRecorder{tasks: cfg.Tasks}, Logger: cfg.Logger,
		TagFreshness: cfg.TagFreshness, UpstreamTimeout: cfg.UpstreamTimeout,
		NewNamesPerMinute: cfg.NewNamesPerMinute,
	})
	if err != nil {
		_ = staging.Close()
		return nil, err
	}
	// Blobs served are held while they are read and touched as used (an orphan cleanup's
	// protection time counts from their last use).
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	uses := inuse.New(cfg.Redis, log, inuse.WithTouch(func(digest string) {
		if err := models.TouchDigest(cfg.DB, digest); err != nil {
			log.Warn("marking content as used", "digest", digest, "err", err)
		}
	}))
	reg, err := registry.New(registry.Config{DB: cfg.DB, Storage: cfg.Storage, PullThrough: cache,
		AdminPassword: cfg.AdminPassword, Logger: cfg.Logger, Uses: uses})
	if err != nil {
		uses.Close()
		cache.Close()
		_ = staging.Close()
		return nil, err
	}
	return &App{Handler: reg, cache: cache, staging: staging, uses: uses}, nil
}

// stagingRoot is the directory below the storage root where the content processes keep their
// fill.Staging directories: on the storage's filesystem, so that a fill's commit is a rename.
const stagingRoot = ".fills"

// Close records what the cache still holds, waits for running fills and removes this
// process's staging directory.
func (a *App) Close() {
	a.cache.Close()
	_ = a.staging.Close()
	a.uses.Close()
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
