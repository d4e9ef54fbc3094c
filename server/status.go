package server

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

// App TTLs, as Pulp's WORKER_TTL, CONTENT_APP_TTL and API_APP_TTL.
const (
	workerTTL     = 30 * time.Second
	contentAppTTL = 30 * time.Second
	apiAppTTL     = 120 * time.Second
)

// statusCheckTimeout bounds the dependency checks of one status request.
const statusCheckTimeout = 2 * time.Second

// StatusRead answers /status/ (anonymous): versions, online apps, connections, storage.
func (s *Server) StatusRead(c *gin.Context, _ gen.StatusReadParams) {
	versions := []map[string]any{}
	for _, v := range Versions {
		versions = append(versions, map[string]any{"component": v.Name, "version": v.Version,
			"package": v.Package, "module": v.Module, "domain_compatible": true})
	}
	// Every check is bounded: while the database or Redis is down, status still answers (200,
	// with connected false and no online apps), as Pulp's status view does. Redis is checked
	// meanwhile; the database's ping and its listings of apps have a bound each. Contexts
	// derive from the request, not c: a timer that fires after the handler returned would
	// read the pooled gin.Context.
	rctx := c.Request.Context()
	redisOK := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(rctx, statusCheckTimeout)
		defer cancel()
		redisOK <- s.deps.RedisPing != nil && s.deps.RedisPing(ctx) == nil
	}()
	pingCtx, cancelPing := context.WithTimeout(rctx, statusCheckTimeout)
	defer cancelPing()
	dbOK := models.Ping(pingCtx, s.db) == nil
	ctx, cancel := context.WithTimeout(rctx, statusCheckTimeout)
	defer cancel()
	online := func(appType string, ttl time.Duration) []map[string]any {
		apps, _ := models.Online(s.db.WithContext(ctx), appType, ttl)
		out := []map[string]any{}
		for _, a := range apps {
			out = append(out, map[string]any{"name": a.Name, "last_heartbeat": models.FormatTime(a.LastHeartbeat), "versions": a.Versions.Any()})
		}
		return out
	}
	storage := map[string]any{"total": nil, "used": nil, "free": nil}
	var st syscall.Statfs_t
	if s.deps.StorageDir != "" && syscall.Statfs(s.deps.StorageDir, &st) == nil {
		total := int64(st.Blocks) * int64(st.Bsize)
		free := int64(st.Bavail) * int64(st.Bsize)
		storage = map[string]any{"total": total, "used": total - int64(st.Bfree)*int64(st.Bsize), "free": free}
	}
	s.respond(c, writeJSON(c, http.StatusOK, map[string]any{
		"versions":            versions,
		"online_workers":      online(models.AppWorker, workerTTL),
		"online_api_apps":     online(models.AppAPI, apiAppTTL),
		"online_content_apps": online(models.AppContent, contentAppTTL),
		"database_connection": map[string]bool{"connected": dbOK},
		"redis_connection":    map[string]bool{"connected": <-redisOK},
		"storage":             storage,
		"content_settings":    map[string]any{"content_origin": nullable(s.deps.ContentOrigin), "content_path_prefix": "/pulp/content/"},
		"domain_enabled":      false,
	}))
}

// nullable is s, or nil (JSON null) when s is empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// LivezRead answers 200 with no body while the process runs.
func (s *Server) LivezRead(c *gin.Context, _ gen.LivezReadParams) {
	c.Status(http.StatusOK)
}

// WorkersList lists workers.
func (s *Server) WorkersList(c *gin.Context, _ gen.WorkersListParams) {
	spec := &models.ListSpec{
		Model:   &models.AppStatus{},
		Scope:   func(q *gorm.DB) *gorm.DB { return q.Where("app_type = ?", models.AppWorker) },
		Columns: map[string]string{"name": "name", "last_heartbeat": "last_heartbeat", "pulp_created": "pulp_created", "pulp_last_updated": "pulp_last_updated", "pulp_id": "id"},
		Special: commonSpecial(models.KindWorker, "app_statuses"),
		Order:   "name",
	}
	cutoff := func() time.Time { return models.Now().Add(-workerTTL) }
	spec.Special["online"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		if v == "true" || v == "True" || v == "1" {
			return q.Where("last_heartbeat >= ?", cutoff()), nil
		}
		return q.Where("last_heartbeat < ?", cutoff()), nil
	}
	spec.Special["missing"] = func(q *gorm.DB, v string) (*gorm.DB, error) {
		if v == "true" || v == "True" || v == "1" {
			return q.Where("last_heartbeat < ?", cutoff()), nil
		}
		return q.Where("last_heartbeat >= ?", cutoff()), nil
	}
	s.respond(c, list[models.AppStatus](s, c, spec))
}

// WorkersRead shows a worker.
func (s *Server) WorkersRead(c *gin.Context, id string, _ gen.WorkersReadParams) {
	s.respond(c, s.readWorker(c, id))
}

func (s *Server) readWorker(c *gin.Context, id string) error {
	if !models.ValidID(id) {
		return errNotFound
	}
	var a models.AppStatus
	err := s.db.WithContext(c).Take(&a, "id = ? AND app_type = ?", id, models.AppWorker).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return &models.NotFoundError{Model: "AppStatus", Ref: id}
	}
	if err != nil {
		return err
	}
	return s.renderObject(c, http.StatusOK, &a)
}
