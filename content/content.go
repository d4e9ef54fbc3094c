// Package content is the content app: the OCI/Docker registry API (/v2/) over pulpgo's
// distributions, with the pull-through cache behind it. Its parts live in subpackages:
// registry (HTTP handlers), pullthrough (the cache), upstream (the upstream registry client)
// and storage (blob storage).
package content

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/registry"
	"github.com/pulpgo/pulpgo/models"
)

// Dispatcher dispatches the tasks that record pulled content.
type Dispatcher interface {
	Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error)
}

// Config is what the content app needs.
type Config struct {
	DB              *gorm.DB
	StorageDir      string
	AdminPassword   string
	Logger          *slog.Logger
	TagFreshness    time.Duration
	UpstreamTimeout time.Duration
	Tasks           Dispatcher
}

// New returns the registry handler.
func New(cfg Config) (http.Handler, error) {
	return registry.New(registry.Config{DB: cfg.DB, Logger: cfg.Logger, AdminPassword: cfg.AdminPassword})
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
