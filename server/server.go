// Package server is the Pulp REST API (/pulp/api/v3/): Gin handlers that implement the
// interface generated from openapi/pulp.yaml. Handlers are thin: they validate input, call
// into models or dispatch tasks, and render Pulp-shaped responses.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
)

// Versions are the component versions announced in /status/ and the API document.
var Versions = []Component{
	{"core", "3.116.0", "pulpcore", "pulpcore.app"},
	{"container", "2.29.0", "pulp-container", "pulp_container.app"},
}

// Component is one announced Pulp component.
type Component struct {
	Name, Version, Package, Module string
}

// VersionMap returns Versions as label → version.
func VersionMap() map[string]string {
	m := map[string]string{}
	for _, c := range Versions {
		m[c.Name] = c.Version
	}
	return m
}

// Dispatcher dispatches tasks (tasks.Dispatcher in production).
type Dispatcher interface {
	Dispatch(ctx context.Context, nt models.NewTask) (*models.Task, error)
}

// Deps are what the API needs.
type Deps struct {
	DB    *gorm.DB
	Tasks Dispatcher
	// AdminPassword is the password of the user admin; empty lets nobody in as admin.
	AdminPassword string
	// Logins checks credentials; share it with the registry of the same process so that a
	// user change made here counts there at once. Nil: the API's own, with LoginTTL.
	Logins *models.Logins
	// LoginTTL is how long verified credentials are trusted without a new check when Logins
	// is nil (0: models.DefaultLoginTTL; negative: never).
	LoginTTL time.Duration
	Logger   *slog.Logger
	// RedisPing checks the Redis connection for /status/.
	RedisPing func(ctx context.Context) error
	// StorageDir is where blobs live (for /status/ storage figures).
	StorageDir string
	// ContentOrigin is Pulp's CONTENT_ORIGIN (shown in /status/), "" when unset.
	ContentOrigin string
	// OrphanProtectionTime is Pulp's ORPHAN_PROTECTION_TIME in minutes, the protection time
	// of an orphan cleanup that names none; nil means Pulp's default (1440).
	OrphanProtectionTime *int64
	// Requests, when set, is told of every answered request (the process's metrics).
	Requests RequestObserver
}

// RequestObserver is told of each API request when its answer is written: the route template
// (the spec's path, "unmatched" for none: a bounded set), the method, the status, the time
// taken and the body bytes written.
type RequestObserver interface {
	ObserveRequest(route, method string, status int, elapsed time.Duration, written int64)
}

// Server implements gen.ServerInterface.
type Server struct {
	deps   Deps
	db     *gorm.DB
	spec   *specIndex
	apiDoc []byte
	// fields are the serializers' field tables, derived from spec.
	fields map[*serializer][]field
	// logins checks Basic credentials and remembers them briefly.
	logins *models.Logins
}

var _ gen.ServerInterface = (*Server)(nil)

// New returns the API handler: the Gin engine, with HEAD answered like GET without a body.
func New(deps Deps) (http.Handler, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	spec, err := loadSpec()
	if err != nil {
		return nil, err
	}
	doc, err := spec.servedDocument()
	if err != nil {
		return nil, err
	}
	fields, err := spec.compileSerializers()
	if err != nil {
		return nil, err
	}
	if deps.Logins == nil {
		deps.Logins = models.NewLogins(deps.DB, deps.AdminPassword, deps.LoginTTL)
	}
	s := &Server{deps: deps, db: deps.DB, spec: spec, apiDoc: doc, fields: fields, logins: deps.Logins}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.RedirectTrailingSlash = false // slashRedirect only appends a slash
	r.HandleMethodNotAllowed = true
	if deps.Requests != nil {
		r.Use(observe(deps.Requests))
	}
	r.Use(s.recovery, correlationID, s.allowHeader, s.authenticate, s.checkQuery)
	r.NoMethod(s.noMethod)
	gen.RegisterHandlersWithOptions(r, s, gen.GinServerOptions{ErrorHandler: s.paramError})
	r.NoRoute(slashRedirect(r, func(c *gin.Context) { s.respond(c, errNotFound) }))
	return headAsGet{r}, nil
}

// headAsGet answers HEAD requests as the GET of the same path would be answered, without the
// body, as Django does for Pulp.
type headAsGet struct{ h http.Handler }

func (g headAsGet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodHead {
		g.h.ServeHTTP(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	g.h.ServeHTTP(noBody{w}, r2)
}

// noBody drops what is written to it (the headers, Content-Length included, still go out).
type noBody struct{ http.ResponseWriter }

func (n noBody) Write(b []byte) (int, error) { return len(b), nil }
