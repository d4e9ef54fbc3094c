// Command pulpgo is a Pulp-compatible container registry with pull-through caching: one binary
// with the roles serve (everything in one process), api, content, worker and migrate.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/cmd/pulpgo/acmecert"
	"github.com/pulpgo/pulpgo/content"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/metrics"
	"github.com/pulpgo/pulpgo/content/reposync"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/server"
	"github.com/pulpgo/pulpgo/tasks"
)

const usage = `usage: pulpgo <command> [flags]

commands:
  serve    API, content app and worker in one process (the default; embedded defaults allowed)
  api      the Pulp REST API only
  content  the registry (content app) only, on :24816 by default
  worker   a task worker only
  migrate  create or update the database schema, then exit

Run "pulpgo <command> -h" for the flags of a command.
`

func main() {
	role := "serve"
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		role, args = args[0], args[1:]
	}
	switch role {
	case "serve", "api", "content", "worker", "migrate":
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "pulpgo: unknown command %q\n\n%s", role, usage)
		os.Exit(2)
	}
	cfg, err := parseConfig(role, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulpgo:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if stopProfile := startCPUProfile(); stopProfile != nil {
		defer stopProfile()
	}
	if err := run(ctx, role, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pulpgo:", err)
		stop()
		os.Exit(1)
	}
}

// startCPUProfile writes a CPU profile of the whole run to $PULPGO_CPUPROFILE.<pid> when that
// variable is set (for the benchmarks: see docs/benchmarks.md), and returns what stops it; nil
// when it is not set.
func startCPUProfile() func() {
	path := os.Getenv("PULPGO_CPUPROFILE")
	if path == "" {
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulpgo: cpu profile:", err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "pulpgo: cpu profile:", err)
		_ = f.Close()
		return nil
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// run runs role with cfg until ctx ends (or, for migrate, until the schema is up to date).
func run(ctx context.Context, role string, cfg *config) error {
	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)

	key, keyPath, created, err := cfg.loadKey(role)
	if err != nil {
		return err
	}
	if created {
		log.Info("created the database encryption key; back it up: the secrets in the database cannot be read without it", "path", keyPath, "key", key.ID())
	} else if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the database encryption key file is readable by other users", "path", keyPath, "mode", fi.Mode().Perm().String())
	}
	models.SetEncryptionKey(key)
	models.SetProcessName(cfg.AppName)
	models.SetContentOrigin(cfg.ContentOrigin)

	db, err := models.Open(cfg.DatabaseURL, cfg.DataDir, models.WithStatementTimeout(cfg.DatabaseTimeout))
	if err != nil {
		return err
	}
	if err := models.Migrate(db); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	if role == "migrate" {
		log.Info("database schema is up to date")
		return nil
	}

	opened, err := openStorage(ctx, cfg, role, log)
	if err != nil {
		return err
	}
	defer opened.close()
	store := opened.driver

	redisURL := cfg.RedisURL
	if redisURL == "" {
		emb, err := tasks.StartEmbedded()
		if err != nil {
			return err
		}
		defer emb.Close()
		redisURL = emb.URL()
	}
	redisOpt, err := tasks.RedisOpt(redisURL)
	if err != nil {
		return err
	}
	rdb := newRedisClient(redisOpt)
	defer rdb.Close()
	dispatcher := tasks.NewDispatcher(db, redisOpt)
	defer dispatcher.Close()
	// coord is the Redis through which processes sharing a storage coordinate (a lock per blob
	// fill, the blobs being read): none with the embedded Redis, which no other process can
	// reach; serve's roles share one fill engine and one tracker of reads instead.
	coord := rdb
	if cfg.RedisURL == "" {
		coord = nil
	}

	// One registry of metrics per process, served at /metrics (or on --metrics-listen).
	m := newMetrics(role, db)
	quotaBytes := cfg.Quota.Bytes
	m.SetQuota(func() int64 { return quotaBytes })
	hc := newHealth(map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { return pingDB(ctx, db) },
		"redis":    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	}, log)
	metricsErr, err := serveMetrics(ctx, cfg, m, hc, log)
	if err != nil {
		return err
	}

	// In serve, the API and the registry share one check of credentials: a user change made
	// through the API counts in the registry at once (across processes: within
	// models.DefaultLoginTTL).
	logins := models.NewLogins(db, cfg.AdminPassword, 0)

	// In serve, the content app and the worker share one fill engine: a sync and a pull of the
	// same blob make one upstream request.
	var reg *content.App
	if role == "serve" || role == "content" {
		if reg, err = newContent(cfg, db, opened, dispatcher, coord, logins, m, log); err != nil {
			return err
		}
		defer reg.Close()
	}
	var worker *tasks.Worker
	if role == "serve" || role == "worker" {
		syncer, closeSyncer, err := newSyncer(db, opened, reg, coord, m, log, content.FillResumes(fillResumes(cfg.FillResumes)))
		if err != nil {
			return err
		}
		defer closeSyncer()
		// The orphan cleanup asks the content processes which blobs are being read: through
		// Redis, or in serve the content app's own tracker.
		var uses *inuse.Tracker
		if reg != nil {
			uses = reg.Uses()
		} else {
			uses = inuse.New(coord, log)
			defer uses.Close()
		}
		eviction := newEviction(cfg, store, uses, reg, coord, log)
		m.SetEviction(func() metrics.EvictionCounts {
			st := eviction.Stats()
			return metrics.EvictionCounts{Runs: st.Runs, ImagesEvicted: st.ImagesEvicted, BytesFreed: st.BytesFreed}
		})
		worker = tasks.NewWorker(tasks.WorkerConfig{DB: db, Redis: redisOpt, Logger: log,
			Concurrency: cfg.Concurrency, Versions: server.VersionMap(), ObserveTask: m.ObserveTask,
			Jobs: map[string]tasks.Job{tasks.NameDownloadImageData: tasks.RecordJob(store),
				tasks.NameSync:          tasks.SyncJob(store, syncer, log),
				tasks.NameOrphanCleanup: tasks.OrphanCleanupJob(store, uses),
				tasks.NameEvict:         eviction.Job()}})
		if err := worker.Start(); err != nil {
			return err
		}
		defer worker.Stop()
		go eviction.Schedule(ctx, db, dispatcher, cfg.Quota.Interval)
	}
	if role == "worker" {
		log.Info("worker started")
		select {
		case <-ctx.Done():
		case err := <-metricsErr:
			return fmt.Errorf("metrics listener: %w", err)
		}
		return nil
	}

	var handler http.Handler
	var apps []string
	orphanProtection := int64(cfg.OrphanProtectionTime)
	switch role {
	case "serve", "api":
		api, err := server.New(server.Deps{DB: db, Tasks: dispatcher, AdminPassword: cfg.AdminPassword, Logins: logins, Logger: log,
			RedisPing: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, StorageDir: statusDir(cfg),
			ContentOrigin: cfg.ContentOrigin, OrphanProtectionTime: &orphanProtection, Requests: m.Requests(metrics.AppAPI)})
		if err != nil {
			return err
		}
		handler = api
		apps = append(apps, models.AppAPI)
		if role == "serve" {
			handler = content.Mux(reg, api)
			apps = append(apps, models.AppContent)
		}
	case "content":
		handler = reg
		apps = append(apps, models.AppContent)
	}
	go heartbeats(ctx, db, apps, log)
	// With a database of its own (--database-url), processes share one ACME account and
	// certificate through it; the embedded database keeps them in the data dir.
	var acmeObjects acmecert.Objects
	if cfg.DatabaseURL != "" {
		acmeObjects = models.NewACMEStore(db)
	}
	return listenAndServe(ctx, cfg, hc.serve(withMetrics(cfg, m, handler)), acmeObjects, log)
}

func newContent(cfg *config, db *gorm.DB, store *openedStorage, d *tasks.Dispatcher, rdb redis.UniversalClient, logins *models.Logins, m *metrics.Metrics, log *slog.Logger) (*content.App, error) {
	var tokens *token.Key
	if cfg.TokenAuth {
		var err error
		if tokens, err = content.TokenKey(context.Background(), db, cfg.TokenKey); err != nil {
			return nil, err
		}
	}
	return content.New(content.Config{DB: db, Storage: store.driver, LocalDir: store.local,
		StorageRedirect: cfg.Store.Redirect, AdminPassword: cfg.AdminPassword,
		Logins: logins, Logger: log, TagFreshness: cfg.TagFreshness, UpstreamTimeout: cfg.UpstreamTimeout,
		NewNamesPerMinute: cfg.NewNamesPerMinute, Tasks: d, Redis: rdb,
		Tokens: tokens, TokenExpiration: cfg.TokenExpiration, ContentOrigin: cfg.ContentOrigin,
		UploadTimeout: cfg.UploadTimeout, Mirrors: cfg.Mirrors,
		Htpasswd: cfg.Htpasswd, FillsRequireAuth: cfg.FillsRequireAuth,
		UpstreamBudgetLow: cfg.UpstreamBudgetLow, BreakerFailures: cfg.BreakerFailures, BreakerCooldown: cfg.BreakerCooldown,
		FillResumes: fillResumes(cfg.FillResumes), Metrics: m,
		LastPullFlush: cfg.Quota.LastPullFlush})
}

// fillResumes turns --fill-resumes (0: never) into content.Config.FillResumes (0: the
// default, negative: never).
func fillResumes(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// newSyncer returns the upstream side of repository syncs for the worker: on the fills of
// the content app of this process (reg), or on its own (locked across processes through rdb).
// Its upstream requests get the client's own timeouts, not the cache's short budget. The
// returned function releases what it opened.
func newSyncer(db *gorm.DB, store *openedStorage, reg *content.App, rdb redis.UniversalClient, m *metrics.Metrics, log *slog.Logger, opts ...fill.Option) (*reposync.Syncer, func(), error) {
	closeFn := func() {}
	var fills *fill.Fills
	if reg != nil {
		fills = reg.Fills()
	} else {
		f, staging, err := content.NewFills(store.driver, store.local, rdb, log, append(content.FillOptions(m), opts...)...)
		if err != nil {
			return nil, nil, err
		}
		fills, closeFn = f, func() { f.Wait(); _ = staging.Close() }
	}
	return reposync.New(reposync.Config{Storage: store.driver, Store: local.New(db, store.driver, log), Fills: fills,
		Logger: log, Observer: m.Upstream()}), closeFn, nil
}

// heartbeats reports the API and content apps of this process in /status/.
func heartbeats(ctx context.Context, db *gorm.DB, apps []string, log *slog.Logger) {
	statuses := make([]*models.AppStatus, 0, len(apps))
	for _, a := range apps {
		statuses = append(statuses, &models.AppStatus{Name: models.ProcessName(), AppType: a,
			Versions: models.MustJSON(server.VersionMap())})
	}
	freed := make([]bool, len(statuses))
	tick := time.NewTicker(tasks.HeartbeatInterval)
	defer tick.Stop()
	for {
		for i, s := range statuses {
			if err := models.Heartbeat(db, s); err != nil {
				log.Warn("heartbeat failed", "app", s.AppType, "err", err)
				continue
			}
			if !freed[i] {
				// A process that had this name before (--app-name, or a container restarted
				// with the same pid and hostname) left its immediate tasks unfinished.
				n, err := models.FailTasksOfRestartedApp(db, s.ID, models.ProcessStart)
				if err != nil || n > 0 {
					log.Warn("failed the tasks of this app's previous run", "app", s.AppType, "count", n, "err", err)
				}
				freed[i] = err == nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
