package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// contentRange is the Content-Range of a chunk: "<start>-<end>", both inclusive.
var contentRange = regexp.MustCompile(`^(?:bytes[ =])?([0-9]{1,18})-([0-9]{1,18})$`)

// serveUpload answers /v2/<name>/blobs/uploads/[<uuid>]: POST starts an upload (or mounts a
// blob, or takes a whole blob at once with ?digest=), PATCH appends a chunk, PUT ?digest=
// finishes it (with an optional last chunk), GET and HEAD report its progress, DELETE cancels
// it.
func (r *Registry) serveUpload(w http.ResponseWriter, req *http.Request, rt route, c caller) error {
	if r.cfg.UploadDir == "" {
		return unsupported(w, rt)
	}
	if rt.ref == "" {
		if req.Method != http.MethodPost {
			return errNotFound
		}
		return r.startUpload(w, req, rt, c)
	}
	if req.Method == http.MethodPost {
		return errNotFound
	}
	if !models.ValidID(rt.ref) {
		return oci.ErrBlobUploadUnknown.WithDetail("uuid", rt.ref)
	}
	ctx := req.Context()
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		u, err := models.GetUpload(r.cfg.DB.WithContext(ctx), rt.ref, rt.name)
		if models.IsNotFound(err) {
			return oci.ErrBlobUploadUnknown.WithDetail("uuid", rt.ref)
		}
		if err != nil {
			return err
		}
		uploadStatus(w, rt.name, u, http.StatusNoContent)
		return nil
	case http.MethodDelete:
		uf, err := r.openUpload(ctx, rt.ref, rt.name)
		if err != nil {
			return err
		}
		defer uf.Close()
		r.dropUpload(ctx, rt.ref)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		uf, err := r.openUpload(ctx, rt.ref, rt.name)
		if err != nil {
			return err
		}
		defer uf.Close()
		if err := r.appendChunk(ctx, uf, req); err != nil {
			return err
		}
		uploadStatus(w, rt.name, uf.u, http.StatusAccepted)
		return nil
	case http.MethodPut:
		digest := req.URL.Query().Get("digest")
		if !oci.ValidDigest(digest) {
			return oci.ErrDigestInvalid.WithDetail("digest", digest)
		}
		uf, err := r.openUpload(ctx, rt.ref, rt.name)
		if err != nil {
			return err
		}
		defer uf.Close()
		// The repository was created when the upload started; a push recreates it if it has
		// been deleted since, as Pulp does.
		t, err := r.pushTarget(ctx, rt.name, true)
		if err != nil {
			return err
		}
		return r.complete(w, req, t, uf, digest)
	}
	return unsupported(w, rt)
}

// startUpload answers POST /v2/<name>/blobs/uploads/, which creates the repository's
// distribution on a first push (as Pulp does).
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route, c caller) error {
	ctx := req.Context()
	t, err := r.pushTarget(ctx, rt.name, true)
	if err != nil {
		return err
	}
	q := req.URL.Query()
	if from, ok := mountSource(req); ok {
		blobID, err := r.mount(ctx, c, from, q.Get("mount"))
		if err != nil {
			return err
		}
		if blobID != "" {
			if err := models.AddPendingBlob(r.cfg.DB.WithContext(ctx), t.Repository.ID, blobID); err != nil {
				return fmt.Errorf("record mounted blob %s in %s: %w", q.Get("mount"), rt.name, err)
			}
			blobCreated(w, rt.name, q.Get("mount"))
			return nil
		}
	}
	digest, monolithic := q["digest"]
	if monolithic && (len(digest) != 1 || !oci.ValidDigest(digest[0])) {
		return oci.ErrDigestInvalid.WithDetail("digest", q.Get("digest"))
	}
	u, err := models.CreateUpload(r.cfg.DB.WithContext(ctx), rt.name)
	if err != nil {
		return err
	}
	if err := r.createUploadFile(u.ID); err != nil {
		r.dropUpload(ctx, u.ID)
		return err
	}
	if !monolithic {
		uploadStatus(w, rt.name, u, http.StatusAccepted)
		return nil
	}
	uf, err := r.openUpload(ctx, u.ID, rt.name)
	if err != nil {
		return err
	}
	defer uf.Close()
	return r.complete(w, req, t, uf, digest[0])
}

// complete appends the request's body to the upload, if it has one, checks the digest and
// commits the blob as pending in the target's repository: 201 with its location.
func (r *Registry) complete(w http.ResponseWriter, req *http.Request, t *models.PushTarget, uf *uploadFile, digest string) error {
	ctx := req.Context()
	if req.ContentLength != 0 {
		if err := r.appendChunk(ctx, uf, req); err != nil {
			return err
		}
	}
	if err := r.finish(ctx, uf, digest, t.Repository.ID); err != nil {
		return err
	}
	blobCreated(w, uf.u.Name, digest)
	return nil
}

// appendChunk appends the body of req to the upload. With a Content-Range the chunk must start
// where the upload ends (416 otherwise) and its Content-Length must match the range.
func (r *Registry) appendChunk(ctx context.Context, uf *uploadFile, req *http.Request) error {
	var body io.Reader = req.Body
	limit := int64(-1)
	if cr := req.Header.Get("Content-Range"); cr != "" {
		m := contentRange.FindStringSubmatch(cr)
		if m == nil {
			return oci.ErrBlobUploadInvalid.WithDetail("Content-Range", cr)
		}
		start, _ := strconv.ParseInt(m[1], 10, 64)
		end, _ := strconv.ParseInt(m[2], 10, 64)
		if start != uf.u.Received || end < start {
			return oci.ErrBlobUploadInvalid.WithDetail("Content-Range", cr)
		}
		if n := end - start + 1; req.ContentLength >= 0 && req.ContentLength != n {
			return oci.ErrSizeInvalid.WithDetail("Content-Range", cr)
		}
		// A body of unknown length (chunked) counts up to the range's end only.
		limit = end - start + 1
		body = io.LimitReader(req.Body, limit)
	}
	if _, err := r.appendBody(ctx, uf, body); err != nil {
		return err
	}
	if limit >= 0 && req.ContentLength < 0 {
		if n, _ := req.Body.Read(make([]byte, 1)); n > 0 {
			return oci.ErrSizeInvalid.WithDetail("Content-Range", req.Header.Get("Content-Range"))
		}
	}
	return nil
}

// mountSource returns the repository a POST asks to mount a blob from: Pulp mounts when the
// query has exactly the keys mount and from.
func mountSource(req *http.Request) (string, bool) {
	q := req.URL.Query()
	if len(q) != 2 || !q.Has("mount") || !q.Has("from") {
		return "", false
	}
	return q.Get("from"), true
}

// uploadStatus answers with the state of upload u: where to send the next chunk and which
// bytes arrived.
func uploadStatus(w http.ResponseWriter, name string, u *models.Upload, status int) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+u.ID)
	h.Set("Docker-Upload-UUID", u.ID)
	h.Set("Range", "0-"+strconv.FormatInt(max(u.Received-1, 0), 10))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// blobCreated answers an upload finished (or a mount) with the blob's location.
func blobCreated(w http.ResponseWriter, name, digest string) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+digest)
	h.Set(headerContentDigest, digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
