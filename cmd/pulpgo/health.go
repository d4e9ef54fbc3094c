package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Health probe paths served by every listening role (and the worker's --metrics-listen), for
// load balancers and Kubernetes probes.
const (
	livezPath  = "/livez"
	readyzPath = "/readyz"
)

// healthCheckTimeout bounds each dependency check of one /readyz request.
const healthCheckTimeout = 2 * time.Second

// health answers the probes: /livez says the process serves requests, /readyz that its
// dependencies (database, Redis) answer too.
type health struct {
	checks map[string]func(context.Context) error
	log    *slog.Logger
}

// newHealth returns the probes of a process whose readiness is checks (name -> check).
func newHealth(checks map[string]func(context.Context) error, log *slog.Logger) *health {
	return &health{checks: checks, log: log}
}

// serve answers GET and HEAD of the probe paths and passes every other request to h.
func (hc *health) serve(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		switch r.URL.Path {
		case livezPath:
			writeHealth(w, http.StatusOK, map[string]string{"status": "ok"})
		case readyzPath:
			hc.ready(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// ready runs every check at once and answers 200 when all pass, 503 naming the failed ones
// otherwise. Errors are logged, not returned: they may name hosts and users.
func (hc *health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthCheckTimeout)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(hc.checks))
	for name, check := range hc.checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	body := map[string]string{}
	var failed []string
	for range hc.checks {
		res := <-results
		if res.err != nil {
			body[res.name] = "unavailable"
			failed = append(failed, res.name)
			hc.log.Warn("readiness check failed", "check", res.name, "err", res.err)
			continue
		}
		body[res.name] = "ok"
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		body["detail"] = "not ready: " + strings.Join(failed, ", ") + " unavailable"
		writeHealth(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ok"
	writeHealth(w, http.StatusOK, body)
}

func writeHealth(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// pingDB checks that db answers within ctx.
func pingDB(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
