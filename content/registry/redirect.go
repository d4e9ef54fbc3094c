package registry

import (
	"context"
	"net/http"
	"time"

	"github.com/pulpgo/pulpgo/content/storage"
)

// redirectExpiry is how long the presigned URL of a redirected blob GET is valid: long enough
// for a client to follow the redirect and retry, short enough not to be a lasting capability.
const redirectExpiry = 10 * time.Minute

// leaser is implemented by Uses that can hold a blob for a while without a reader
// (inuse.Tracker.Lease).
type leaser interface {
	Lease(ctx context.Context, digest string, d time.Duration)
}

// redirectBlob answers a GET of the stored blob digest with a 307 to a presigned URL of the
// storage, when the registry is configured so (StorageRedirect) and the storage can make one,
// and reports whether it did. The client sends its Range header to that URL, which honours
// it. When the URL cannot be made, the blob is served here as usual.
func (r *Registry) redirectBlob(w http.ResponseWriter, req *http.Request, digest string) bool {
	if !r.cfg.StorageRedirect {
		return false
	}
	ps, ok := r.cfg.Storage.(storage.Presigner)
	if !ok {
		return false
	}
	p, err := storage.BlobPath(digest)
	if err != nil {
		return false
	}
	u, err := ps.PresignGet(req.Context(), p, redirectExpiry)
	if err != nil {
		r.log.Warn("presign blob URL; serving the blob instead", "digest", digest, "error", err)
		return false
	}
	if l, ok := r.cfg.Uses.(leaser); ok {
		// The client reads the blob from the storage later: an orphan cleanup or an eviction
		// must not delete it while the URL is valid.
		l.Lease(req.Context(), digest, redirectExpiry)
	}
	w.Header().Del("Content-Type")
	http.Redirect(w, req, u, http.StatusTemporaryRedirect)
	return true
}
