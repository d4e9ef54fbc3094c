package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/metrics"
	"github.com/pulpgo/pulpgo/models"
)

// newMetrics returns the metrics of a process of role, with the figures sampled from db.
func newMetrics(role string, db *gorm.DB) *metrics.Metrics {
	m := metrics.New(role)
	m.SetTaskCounts(func() (map[string]int64, error) { return models.CountUnfinishedTasks(db) })
	m.SetStorageUsed(func() (int64, error) { return models.StoredBlobBytes(db) })
	return m
}

// withMetrics serves /metrics on the main listener's handler h, unless --metrics-listen puts
// them on a listener of their own.
func withMetrics(cfg *config, m *metrics.Metrics, h http.Handler) http.Handler {
	if cfg.MetricsListen != "" {
		return h
	}
	return m.Serve(h)
}

// serveMetrics serves /metrics (and the probes of hc) alone on --metrics-listen until ctx ends; it returns once the
// listener is open (an error when it cannot be), and errc receives the server's failure (which
// is logged too: only the worker, which serves nothing else, stops on it).
func serveMetrics(ctx context.Context, cfg *config, m *metrics.Metrics, hc *health, log *slog.Logger) (<-chan error, error) {
	errc := make(chan error, 1)
	if cfg.MetricsListen == "" {
		return errc, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--metrics-listen): %w", cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, m.Handler())
	srv := &http.Server{Handler: hc.serve(mux), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the metrics listener failed", "addr", ln.Addr().String(), "err", err)
			errc <- err
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", metrics.Path)
	return errc, nil
}
