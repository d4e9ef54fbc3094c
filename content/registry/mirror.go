package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// DefaultMirrorHost is the upstream a registry-mirror request without ?ns= is for: Docker's
// classic registry-mirrors sends no ns, containerd sends ns=docker.io.
const DefaultMirrorHost = "docker.io"

// mirrorTarget returns the name a registry-mirror request for name is served under, given the
// ?ns= its client sent ("" when none). An unmapped ns is NAME_UNKNOWN: never another
// upstream's images. For the default mirror (no ns, or docker.io) a name that resolves as it
// is (an ordinary distribution's base path, or a name below a pull-through distribution) keeps
// going there; any other name goes below the base path of the mapped pull-through
// distribution, so an image is cached once whichever way it is asked for. Without mirrors
// name is served as it is.
func (r *Registry) mirrorTarget(ctx context.Context, ns, name string) (string, error) {
	if len(r.cfg.Mirrors) == 0 {
		return name, nil
	}
	if ns == "" {
		ns = DefaultMirrorHost
	}
	dist, ok := r.cfg.Mirrors[ns]
	if !ok {
		return "", oci.ErrNameUnknown.WithDetail("name", name)
	}
	if ns == DefaultMirrorHost {
		_, err := r.resolve(ctx, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, oci.ErrNameUnknown) {
			return "", err
		}
	}
	base, err := r.mirrors.basePath(ctx, r, dist)
	if err != nil {
		return "", err
	}
	if base == "" {
		return "", oci.ErrNameUnknown.WithDetail("name", name)
	}
	return base + "/" + name, nil
}

// mirrorNames are the names a token request's scope name may be served under as a mirror
// request (the token request carries no ns): below each mapped pull-through distribution.
func (r *Registry) mirrorNames(ctx context.Context, name string) ([]string, error) {
	var out []string
	for _, dist := range r.cfg.Mirrors {
		base, err := r.mirrors.basePath(ctx, r, dist)
		if err != nil {
			return nil, err
		}
		if base != "" {
			out = append(out, base+"/"+name)
		}
	}
	return out, nil
}

// mirrorBases remembers the base paths of the mirrors' pull-through distributions by name for
// the resolve TTL, so that mirror requests cost no database query each.
type mirrorBases struct {
	mu   sync.Mutex
	byID map[string]mirrorBase
}

type mirrorBase struct {
	path    string // "" when no pull-through distribution has the name
	expires time.Time
}

func (m *mirrorBases) basePath(ctx context.Context, r *Registry, name string) (string, error) {
	m.mu.Lock()
	b, ok := m.byID[name]
	m.mu.Unlock()
	if ok && time.Now().Before(b.expires) {
		return b.path, nil
	}
	var paths []string
	err := r.cfg.DB.WithContext(ctx).Model(&models.Distribution{}).
		Where("name = ? AND pulp_type = ?", name, models.KindPullThroughDist.PulpType).Limit(1).Pluck("base_path", &paths).Error
	if err != nil {
		return "", fmt.Errorf("mirror distribution %s: %w", name, err)
	}
	b = mirrorBase{expires: time.Now().Add(r.mirrorTTL())}
	if len(paths) == 1 {
		b.path = strings.TrimSuffix(paths[0], "/")
	}
	m.mu.Lock()
	if m.byID == nil {
		m.byID = map[string]mirrorBase{}
	}
	m.byID[name] = b
	m.mu.Unlock()
	return b.path, nil
}

// mirrorTTL is how long a mirror's base path is reused: the resolve TTL (a second by default).
func (r *Registry) mirrorTTL() time.Duration {
	if r.cfg.ResolveTTL > 0 {
		return r.cfg.ResolveTTL
	}
	if r.cfg.ResolveTTL < 0 {
		return 0
	}
	return DefaultResolveTTL
}
