package upstream

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMissingTool means a program the upstream needs (docker-registry,
// skopeo, busybox) is not installed.
var ErrMissingTool = errors.New("required tool not found")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Username and Password, when Username is set, are the HTTP Basic
	// credentials /token requires. When Username is empty, /token hands out
	// anonymous tokens.
	Username, Password string
	// RegistryBinary is the CNCF Distribution registry; "docker-registry"
	// (found on PATH) by default.
	RegistryBinary string
	// SkopeoBinary pushes the test images; "skopeo" by default.
	SkopeoBinary string
	// Busybox is the static busybox put in PushSmall's image;
	// "/bin/busybox" by default.
	Busybox string
	// Logger receives the upstream's own warnings; discarded by default.
	Logger *slog.Logger
	// PullBudget, when its Limit is set, rate-limits manifest GETs as Docker
	// Hub does (budget.go); no limit by default.
	PullBudget PullBudget
}

// Upstream is a running local Docker Hub: a real registry behind a Go front
// (token auth, redirects) and a Go CDN. Its methods are safe for concurrent
// use.
type Upstream struct {
	opts   Options
	log    *slog.Logger
	dir    string // temporary root: registry storage, config, logs, layouts
	reg    *registryProcess
	client *http.Client // to the registry; never follows redirects
	cdnKey []byte       // signs CDN URLs

	front, cdn         *http.Server
	frontAddr, cdnAddr string

	tokens *tokens
	counts *counters
	faults faults
	budget *budget               // nil: no pull budget
	moving atomic.Pointer[mover] // nil until PushMoving

	closeOnce sync.Once
	closeErr  error
}

// Start runs a registry with empty storage and the front and CDN before it,
// each on a free 127.0.0.1 port. ctx bounds the start-up only; call Close to
// stop everything and delete the storage.
func Start(ctx context.Context, opts Options) (*Upstream, error) {
	if opts.RegistryBinary == "" {
		opts.RegistryBinary = "docker-registry"
	}
	if opts.SkopeoBinary == "" {
		opts.SkopeoBinary = "skopeo"
	}
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "pulpgo-upstream-")
	if err != nil {
		return nil, fmt.Errorf("start upstream: %w", err)
	}
	u := &Upstream{
		opts:   opts,
		log:    opts.Logger,
		dir:    dir,
		client: newRegistryClient(),
		cdnKey: []byte(rand.Text()),
		tokens: newTokens(),
		counts: newCounters(),
		budget: newBudget(opts.PullBudget),
	}
	started := false
	defer func() {
		if !started {
			u.Close()
		}
	}()

	if u.reg, err = startRegistry(ctx, opts.RegistryBinary, filepath.Join(dir, "registry"), u.client); err != nil {
		return nil, fmt.Errorf("start upstream: %w", err)
	}
	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start upstream front: %w", err)
	}
	cdnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		frontLn.Close()
		return nil, fmt.Errorf("start upstream CDN: %w", err)
	}
	u.frontAddr, u.cdnAddr = frontLn.Addr().String(), cdnLn.Addr().String()
	u.front = u.serve(frontLn, u.frontHandler())
	u.cdn = u.serve(cdnLn, u.cdnHandler())
	started = true
	return u, nil
}

// serve runs an HTTP server for h on ln until Close.
func (u *Upstream) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(u.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			u.log.Error("upstream listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return srv
}

// newRegistryClient returns a client for the local registry: no proxy, no
// transparent gzip, no redirects, many idle connections for benchmarks.
func newRegistryClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// URL returns the front's base URL, http://127.0.0.1:port: the address
// clients and the pull-through cache use as "Docker Hub".
func (u *Upstream) URL() string { return "http://" + u.frontAddr }

// CDNURL returns the CDN's base URL, http://127.0.0.1:port.
func (u *Upstream) CDNURL() string { return "http://" + u.cdnAddr }

// RegistryAddr returns the real registry's host:port. It has no auth and no
// faults; push test images there directly.
func (u *Upstream) RegistryAddr() string { return u.reg.addr }

func (u *Upstream) registryURL() string { return "http://" + u.reg.addr }

// Close stops the front, the CDN and the registry, and deletes the storage.
// It is safe to call more than once.
func (u *Upstream) Close() error {
	u.closeOnce.Do(func() {
		var errs []error
		if m := u.moving.Load(); m != nil {
			m.stop()
		}
		for _, srv := range []*http.Server{u.front, u.cdn} {
			if srv != nil {
				errs = append(errs, srv.Close())
			}
		}
		if u.reg != nil {
			errs = append(errs, u.reg.stop())
		}
		u.client.CloseIdleConnections()
		errs = append(errs, os.RemoveAll(u.dir))
		u.closeErr = errors.Join(errs...)
	})
	return u.closeErr
}
