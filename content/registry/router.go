// Package registry serves the OCI distribution API (/v2/) for pulpgo's distributions: the
// content of ordinary container distributions from the database and blob storage, and names
// below pull-through distributions through a PullThrough cache. Ordinary distributions also
// take pushes (blob uploads, manifests, deletes), which create the distribution and its
// repository on the first push to a name.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/cacheonly"
	"github.com/pulpgo/pulpgo/content/local"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/models"
)

// DefaultResolveTTL is how long the resolution of a repository name to its distribution is
// reused when Config.ResolveTTL is zero.
const DefaultResolveTTL = time.Second

// Config is what the registry needs.
type Config struct {
	// DB holds the distributions, repositories and content.
	DB *gorm.DB
	// Storage holds the blobs and the manifests (byte for byte, at storage.BlobPath(digest)).
	Storage storage.Driver
	// StorageRedirect answers GETs of stored blobs with a 307 to a presigned URL of the
	// storage, when it can make one (storage.Presigner), so that clients download from the
	// object store; HEADs and blobs still being filled are answered as usual.
	StorageRedirect bool
	// PullThrough serves the names below pull-through distributions and their children; nil
	// means no pull-through (children are then served from their local content).
	PullThrough PullThrough
	// RemoteBlobs serves the blobs an ordinary distribution's version holds but storage does
	// not (on_demand and streamed syncs); nil means such blobs are unknown.
	RemoteBlobs local.RemoteBlobs
	// AdminPassword is the password of the API user "admin", a superuser whose HTTP Basic
	// credentials open every distribution. Empty means nobody can authenticate as admin;
	// other users log in with their stored passwords (models.Logins).
	AdminPassword string
	// Logins checks Basic credentials and token subjects (shared with the API of the same
	// process, whose user changes then count here at once). Nil: the registry's own, with
	// LoginTTL.
	Logins *models.Logins
	// LoginTTL is how long verified credentials and token subjects are trusted without a new
	// database check when Logins is nil (0: models.DefaultLoginTTL; negative: never).
	LoginTTL time.Duration
	// Logger receives server-side failures; nil means slog.Default().
	Logger *slog.Logger
	// ResolveTTL is how long a name's resolution (distribution, served version) is reused,
	// which bounds how late a new or deleted distribution is seen; zero means
	// DefaultResolveTTL and a negative value disables the cache.
	ResolveTTL time.Duration
	// Tokens, when set, turns on token authentication as Pulp's: GET /token/ issues tokens
	// signed with this key, and /v2/ requests need one granting what they ask (or the admin's
	// Basic credentials). Nil keeps Basic authentication only, with a Basic challenge
	// (Pulp's TOKEN_AUTH_DISABLED).
	Tokens *token.Key
	// TokenExpiration is how long an issued token is valid; zero means
	// DefaultTokenExpiration.
	TokenExpiration time.Duration
	// ContentOrigin, when set, is the URL clients reach the registry at: the token realm is
	// <ContentOrigin>/token/ (Pulp's TOKEN_SERVER). Empty: the request's scheme and host.
	ContentOrigin string
	// Mirrors makes the registry a registry mirror: it maps an upstream host (the ?ns= of
	// containerd's mirror requests; DefaultMirrorHost for requests without one) to the name of
	// the pull-through distribution that serves unprefixed names for it. Empty: names are
	// served as they are.
	Mirrors map[string]string
	// Now is the clock of token issue and verification; nil means time.Now.
	Now func() time.Time
	// Uses, when set, marks each blob as in use while it is served (content/inuse), so that
	// an orphan cleanup leaves its bytes alone.
	Uses Uses
	// Pulls, when set, is told the digest of every manifest and blob served (content/lastpull),
	// for a storage quota to evict the least recently pulled images first.
	Pulls Pulls
	// UploadDir is where blob uploads keep their bytes until they are finished: a directory
	// shared by every content process of the storage, on its filesystem (so that finishing an
	// upload is a rename). Empty refuses uploads.
	UploadDir string
	// UploadTimeout is how long an upload may go without a write before it is swept as
	// abandoned (its row and bytes removed); zero means DefaultUploadTimeout.
	UploadTimeout time.Duration
	// Recorder turns pushed manifests into content rows; nil refuses manifest pushes.
	Recorder Recorder
	// PullUsers, when set, is a second source of users (--htpasswd) who may pull only: what
	// anonymous callers may, and the images below private pull-through distributions; never
	// push, private ordinary distributions, namespace ownership, or the API.
	PullUsers PullUsers
	// FillsRequireAuth makes anonymous pulls cache-only (content/cacheonly): they get what the
	// cache holds, with no upstream request, and a challenge for the rest.
	FillsRequireAuth bool
}

// PullUsers checks the credentials of pull-only users (content/htpasswd's File).
type PullUsers interface {
	// Authenticate reports whether user has password.
	Authenticate(user, password string) bool
	// Has reports whether user exists (the subject of a token issued to it).
	Has(user string) bool
}

// Recorder records a stored manifest (and, for an index, its stored children) as manifest and
// blob content in a transaction, returning the manifest's id: the same rows a sync or a pull
// makes of it.
type Recorder interface {
	RecordManifest(ctx context.Context, tx *gorm.DB, digest string) (manifestID string, err error)
}

// Uses marks a blob as being read until release is called.
type Uses interface {
	Hold(ctx context.Context, digest string) (release func())
}

// Pulls notes that a manifest or blob was served; it must not block (no I/O per request).
type Pulls interface {
	Note(digest string)
}

// Registry is the /v2/ handler.
type Registry struct {
	cfg   Config
	log   *slog.Logger
	names *nameCache
	store *local.Store // the content of ordinary distributions
	// tokens remembers verified bearer tokens (token authentication only).
	tokens *verifiedTokens
	// logins checks Basic credentials and token subjects against the users.
	logins *models.Logins
	bufs   sync.Pool // *[]byte of copyBufferSize, for streaming blobs
	// mirrors caches the base paths of Config.Mirrors' distributions.
	mirrors mirrorBases
	// app is this process's content app status id (appID), once known.
	appMu sync.Mutex
	app   string
	// stopSweep ends the sweeper of abandoned uploads; sweepDone is closed when it has.
	stopSweep context.CancelFunc
	sweepDone chan struct{}
}

var _ http.Handler = (*Registry)(nil)

// New returns the registry handler.
func New(cfg Config) (*Registry, error) {
	if cfg.DB == nil {
		return nil, errors.New("registry: Config.DB is required")
	}
	if cfg.Storage == nil {
		return nil, errors.New("registry: Config.Storage is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Logins == nil {
		cfg.Logins = models.NewLogins(cfg.DB, cfg.AdminPassword, cfg.LoginTTL)
	}
	ttl := cfg.ResolveTTL
	if ttl == 0 {
		ttl = DefaultResolveTTL
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, names: newNameCache(ttl), tokens: newVerifiedTokens(),
		logins: cfg.Logins, store: local.New(cfg.DB, cfg.Storage, cfg.Logger, local.WithRemoteBlobs(cfg.RemoteBlobs))}
	r.bufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	r.startSweeper()
	return r, nil
}

// Close stops the sweeper of abandoned uploads.
func (r *Registry) Close() {
	if r.stopSweep != nil {
		r.stopSweep()
		<-r.sweepDone
	}
}

// Header names the registry sets.
const (
	headerAPIVersion    = "Docker-Distribution-API-Version"
	headerContentDigest = "Docker-Content-Digest"
)

// routeKind says which endpoint a path addresses.
type routeKind int

const (
	routeUnknown   routeKind = iota
	routeBase                // /v2/
	routeCatalog             // /v2/_catalog
	routeTags                // /v2/<name>/tags/list
	routeManifest            // /v2/<name>/manifests/<reference>
	routeBlob                // /v2/<name>/blobs/<digest>
	routeUpload              // /v2/<name>/blobs/uploads/... (push only)
	routeReferrers           // /v2/<name>/referrers/<digest>
)

// route is a parsed registry path. name and ref are still in their escaped form: the grammar
// of names, tags and digests has no character that needs escaping, so anything escaped (an
// encoded "/" or ".") fails validation instead of being decoded into something else.
type route struct {
	kind routeKind
	name string
	ref  string
	// asked is the name as the client sent it, when a registry mirror serves it as name.
	asked string
}

// parseRoute splits the escaped path p of a /v2/ request. Names contain slashes, so the
// endpoint is found from the end: the reference and the digest never contain "/".
func parseRoute(p string) route {
	if p == "/v2" || p == "/v2/" {
		return route{kind: routeBase}
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog}
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: routeTags, name: name}
	}
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return route{}
	}
	head, last := rest[:slash], rest[slash+1:]
	switch {
	case strings.HasSuffix(head, "/blobs/uploads"):
		return route{kind: routeUpload, name: strings.TrimSuffix(head, "/blobs/uploads"), ref: last}
	case strings.HasSuffix(head, "/referrers"):
		return route{kind: routeReferrers, name: strings.TrimSuffix(head, "/referrers"), ref: last}
	case strings.HasSuffix(head, "/manifests"):
		return route{kind: routeManifest, name: strings.TrimSuffix(head, "/manifests"), ref: last}
	case strings.HasSuffix(head, "/blobs"):
		return route{kind: routeBlob, name: strings.TrimSuffix(head, "/blobs"), ref: last}
	}
	// A digest reference with slashes in it ("sha256:../../x") is a bad digest, not an unknown
	// route: answer it as such.
	for _, kind := range []struct {
		sep string
		k   routeKind
	}{{"/blobs/", routeBlob}, {"/manifests/", routeManifest}} {
		if i := strings.LastIndex(rest, kind.sep); i > 0 {
			if ref := rest[i+len(kind.sep):]; strings.Contains(ref, ":") {
				return route{kind: kind.k, name: rest[:i], ref: ref}
			}
		}
	}
	return route{}
}

// errNotFound answers paths that are no registry endpoint; like Pulp, the code is the generic
// UNSUPPORTED.
var errNotFound = &oci.Error{Status: http.StatusNotFound, Code: "UNSUPPORTED", Message: "Not found."}

// ServeHTTP routes registry requests, and the token endpoint when token authentication is
// on. Every registry response, errors included, carries the Docker-Distribution-API-Version
// header.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.cfg.Tokens != nil && (req.URL.Path == "/token/" || req.URL.Path == "/token") {
		r.serveToken(w, req)
		return
	}
	w.Header().Set(headerAPIVersion, "registry/2.0")
	rt := parseRoute(req.URL.EscapedPath())
	switch rt.kind {
	case routeUnknown:
		r.writeError(w, req, errNotFound)
		return
	}
	write := isWrite(rt, req)
	if !allowed(rt, req.Method) {
		r.writeError(w, req, unsupported(w, rt))
		return
	}
	if r.cfg.Tokens != nil && rt.kind != routeBase && rt.kind != routeCatalog && !oci.ValidName(rt.name) {
		// No scope can name it: say so before asking for a token.
		r.writeError(w, req, oci.ErrNameInvalid.WithDetail("name", rt.name))
		return
	}
	c, err := r.authenticate(req)
	if err == nil {
		err = r.permit(c, rt, req)
	}
	if err == nil && write && !oci.ValidName(rt.name) {
		err = oci.ErrNameInvalid.WithDetail("name", rt.name)
	}
	if err == nil && write && !r.mayPush(c, rt.name) {
		err = pushDenied(c)
	}
	if err == nil && !write && r.cfg.FillsRequireAuth && c.anonymous() {
		req = req.WithContext(cacheonly.With(req.Context()))
	}
	rt.asked = rt.name // tags/list answers under the name asked for, a mirror's too
	if err == nil && !write && rt.name != "" {
		// A registry mirror's request names the image as its upstream does: the scopes
		// above are for that name, the content is served under the name it maps to.
		rt.name, err = r.mirrorTarget(req.Context(), req.URL.Query().Get("ns"), rt.name)
	}
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	switch rt.kind {
	case routeBase:
		if r.cfg.Tokens == nil && req.Header.Get("Authorization") == "" {
			// Container clients send credentials only after a challenge here; anonymous clients
			// answer it with empty Basic credentials, which still read public content.
			r.writeError(w, req, oci.ErrUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("{}"))
	case routeCatalog:
		r.serveCatalog(w, req, c)
	case routeReferrers:
		r.serveReferrers(w, req, rt, c)
	default:
		if write {
			r.servePush(w, req, rt, c)
			return
		}
		r.serveRepository(w, req, rt, c)
	}
}

// serveRepository validates the name and the reference of rt, resolves the name to an Image
// (checking access), and hands over to the endpoint's handler.
func (r *Registry) serveRepository(w http.ResponseWriter, req *http.Request, rt route, c caller) {
	if !oci.ValidName(rt.name) {
		r.writeError(w, req, oci.ErrNameInvalid.WithDetail("name", rt.name))
		return
	}
	switch rt.kind {
	case routeManifest:
		if oci.IsDigest(rt.ref) {
			if !oci.ValidDigest(rt.ref) {
				r.writeError(w, req, oci.ErrDigestInvalid.WithDetail("digest", rt.ref))
				return
			}
		} else if !oci.ValidTag(rt.ref) {
			r.writeError(w, req, oci.ErrManifestUnknown.WithDetail("reference", rt.ref))
			return
		}
	case routeBlob:
		if !oci.ValidDigest(rt.ref) {
			r.writeError(w, req, oci.ErrDigestInvalid.WithDetail("digest", rt.ref))
			return
		}
	}
	img, err := r.image(req.Context(), rt.name, c)
	if errors.Is(err, oci.ErrUnauthorized) && r.cfg.Tokens != nil {
		// The token granted a pull the distribution no longer allows (made private since).
		err = errInsufficientScope
	}
	if err != nil {
		r.writeError(w, req, detailed(err, oci.ErrNameUnknown, "name", rt.name))
		return
	}
	switch rt.kind {
	case routeTags:
		r.serveTags(w, req, img, rt.asked)
	case routeManifest:
		r.serveManifest(w, req, img, rt.ref)
	case routeBlob:
		r.serveBlob(w, req, img, rt.ref)
	}
}

// methods are the methods each route answers.
var methods = map[routeKind][]string{
	routeBase:      {http.MethodGet, http.MethodHead},
	routeCatalog:   {http.MethodGet, http.MethodHead},
	routeTags:      {http.MethodGet, http.MethodHead},
	routeReferrers: {http.MethodGet, http.MethodHead},
	routeManifest:  {http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
	routeBlob:      {http.MethodGet, http.MethodHead, http.MethodDelete},
	routeUpload:    {http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete},
}

// allowed reports whether route rt answers method.
func allowed(rt route, method string) bool {
	return slices.Contains(methods[rt.kind], method)
}

// unsupported answers methods a route does not implement.
func unsupported(w http.ResponseWriter, rt route) error {
	w.Header().Set("Allow", strings.Join(methods[rt.kind], ", "))
	return oci.ErrUnsupported
}
