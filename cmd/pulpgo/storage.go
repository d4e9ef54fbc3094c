package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/storage/s3"
)

// storageSettings choose where blobs and manifests are kept: the filesystem (--storage-dir)
// or an S3-compatible bucket (--storage s3://bucket/prefix).
type storageSettings struct {
	// URL is s3://bucket/prefix, or empty for the filesystem at --storage-dir.
	URL string
	// Endpoint, Region, AccessKey and SecretKey reach the bucket; empty ones come from the
	// standard AWS environment (see s3.Config). SecretKey is never logged nor shown.
	Endpoint, Region, AccessKey, SecretKey string
	PathStyle                              bool
	// Redirect answers blob GETs with a 307 to a presigned URL of the object store.
	Redirect bool
}

// s3SweepInterval is how often a process aborts the multipart uploads crashed processes left.
const s3SweepInterval = time.Hour

func storageFlags(fs *flag.FlagSet, s *storageSettings, str func(*string, string, string, string, string),
	boolean func(*bool, string, string, bool, string)) {
	str(&s.URL, "storage", "PULPGO_STORAGE", "", "s3://bucket/prefix keeps blobs and manifests in an S3-compatible bucket (fills and uploads still stage in <data-dir>); empty = the filesystem at --storage-dir")
	str(&s.Endpoint, "s3-endpoint", "PULPGO_S3_ENDPOINT", "", "URL of the S3 endpoint, like http://127.0.0.1:8333; empty = AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3")
	str(&s.Region, "s3-region", "PULPGO_S3_REGION", "", "region of the bucket; empty = AWS_REGION or AWS_DEFAULT_REGION")
	str(&s.AccessKey, "s3-access-key", "PULPGO_S3_ACCESS_KEY", "", "S3 access key; empty = AWS_ACCESS_KEY_ID")
	str(&s.SecretKey, "s3-secret-key", "PULPGO_S3_SECRET_KEY", "", "S3 secret key (never logged); empty = AWS_SECRET_ACCESS_KEY")
	boolean(&s.PathStyle, "s3-path-style", "PULPGO_S3_PATH_STYLE", true, "address the bucket in the URL path (http://host/bucket/key), as SeaweedFS, MinIO and most stores other than AWS need; false = virtual-host style where the endpoint supports it")
	boolean(&s.Redirect, "storage-redirect", "PULPGO_STORAGE_REDIRECT", false, "answer blob GETs of blobs stored in S3 with a 307 to a presigned URL (valid 10 minutes) so clients download from the object store; the endpoint must be reachable by the clients")
}

// check validates the settings after parsing.
func (s *storageSettings) check() error {
	if s.URL == "" {
		if s.Redirect {
			return fmt.Errorf("--storage-redirect needs --storage s3://bucket/prefix: the filesystem has no URL to redirect to")
		}
		return nil
	}
	if _, _, err := s3.ParseURL(s.URL); err != nil {
		return fmt.Errorf("--storage: %w", err)
	}
	return nil
}

// openedStorage is the driver of a process, with the local directory its fills stage in and
// its uploads keep their bytes (the storage root for the filesystem, on the same filesystem
// so commits are renames).
type openedStorage struct {
	driver storage.Driver
	local  string
	close  func()
}

// openStorage opens the storage of role. The filesystem sweeps the unfinished writes crashes
// left (serve owns its storage; roles sharing it sweep only what no write in progress can
// own); S3 aborts the stale multipart uploads now and every hour.
func openStorage(ctx context.Context, cfg *config, role string, log *slog.Logger) (*openedStorage, error) {
	if cfg.Store.URL == "" {
		store, err := storage.NewFilesystem(cfg.StorageDir)
		if err != nil {
			return nil, fmt.Errorf("open storage %s: %w", cfg.StorageDir, err)
		}
		sweep := store.SweepWrites
		if role != "serve" {
			sweep = func() error { return store.SweepWritesOlderThan(time.Hour) }
		}
		if err := sweep(); err != nil {
			return nil, fmt.Errorf("sweep unfinished storage writes: %w", err)
		}
		return &openedStorage{driver: store, local: store.Dir(), close: func() { _ = store.Close() }}, nil
	}
	bucket, prefix, err := s3.ParseURL(cfg.Store.URL)
	if err != nil {
		return nil, fmt.Errorf("--storage: %w", err)
	}
	local := filepath.Join(cfg.DataDir, "s3-local")
	d, err := s3.New(s3.Config{Bucket: bucket, Prefix: prefix, Endpoint: cfg.Store.Endpoint, Region: cfg.Store.Region,
		AccessKey: cfg.Store.AccessKey, SecretKey: cfg.Store.SecretKey, PathStyle: cfg.Store.PathStyle,
		ScratchDir: filepath.Join(local, ".writes")})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = d.Check(cctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", d, err)
	}
	age := s3.SweepAge
	if role == "serve" {
		age = 0
	}
	sctx, stop := context.WithCancel(ctx)
	go d.Sweep(sctx, s3SweepInterval, age, log)
	log.Info("blob storage in S3", "storage", d.String(), "redirect", cfg.Store.Redirect)
	return &openedStorage{driver: d, local: local, close: stop}, nil
}

// statusDir is the directory whose filesystem /status/ reports the figures of: the storage
// directory, or none for object storage.
func statusDir(cfg *config) string {
	if cfg.Store.URL != "" {
		return ""
	}
	return cfg.StorageDir
}
