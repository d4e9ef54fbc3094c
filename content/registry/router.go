// Package registry serves the OCI distribution API (/v2/) for pulpgo's distributions.
package registry

import (
	"log/slog"
	"net/http"

	"gorm.io/gorm"
)

// Config is what the registry needs.
type Config struct {
	DB            *gorm.DB
	Logger        *slog.Logger
	AdminPassword string
}

// Registry is the /v2/ handler.
type Registry struct {
	cfg Config
}

// New returns the registry handler.
func New(cfg Config) (*Registry, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registry{cfg: cfg}, nil
}

// ServeHTTP routes registry requests.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "Repository not found.")
}
