package registry

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/models"
)

// uploadFile is the staging file of one upload, opened and locked (flock) so that one request
// at a time appends to it, whichever content process serves it. Its upload row is re-read
// under the lock: the row says how many of the file's bytes count.
type uploadFile struct {
	f *os.File
	u *models.Upload
}

// errUploadBusy answers a chunk sent while another request of the same upload still writes.
var errUploadBusy = &oci.Error{Status: 416, Code: "BLOB_UPLOAD_INVALID", Message: "Another request is writing to this upload."}

// uploadPath is where the bytes of upload id are kept. Ids are checked (models.ValidID)
// before they name a file.
func (r *Registry) uploadPath(id string) string { return filepath.Join(r.cfg.UploadDir, id) }

// createUploadFile creates the empty staging file of the new upload id. Only a new upload
// creates one: a request for an upload whose file is gone finds no upload.
func (r *Registry) createUploadFile(id string) error {
	f, err := os.OpenFile(r.uploadPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		// The directory is made by the sweeper, which starts with the registry: the first
		// upload of a new process can come first.
		if err = os.MkdirAll(r.cfg.UploadDir, 0o700); err == nil {
			f, err = os.OpenFile(r.uploadPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("create upload %s: %w", id, err)
	}
	return f.Close()
}

// openUpload opens and locks the staging file of upload u of name, and re-reads its row. An
// upload whose file is missing or shorter than its row counts (its bytes were committed by a
// request that did not get to drop the row, or lost) is dropped: its saved hash would not
// describe the file.
func (r *Registry) openUpload(ctx context.Context, id, name string) (*uploadFile, error) {
	f, err := os.OpenFile(r.uploadPath(id), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := models.GetUpload(r.cfg.DB.WithContext(ctx), id, name); err == nil {
			r.dropUpload(ctx, id)
		}
		return nil, oci.ErrBlobUploadUnknown.WithDetail("uuid", id)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", id, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errUploadBusy.WithDetail("uuid", id)
	}
	u, err := models.GetUpload(r.cfg.DB.WithContext(ctx), id, name)
	if err != nil {
		f.Close()
		if models.IsNotFound(err) {
			return nil, oci.ErrBlobUploadUnknown.WithDetail("uuid", id)
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() < u.Received {
		f.Close()
		r.dropUpload(ctx, id)
		return nil, oci.ErrBlobUploadUnknown.WithDetail("uuid", id)
	}
	return &uploadFile{f: f, u: u}, nil
}

// Close releases the lock and the file.
func (uf *uploadFile) Close() error { return uf.f.Close() }

// sha256State returns the running sha256 of the upload's counted bytes: restored from the
// row, or computed again from the file when the row has none.
func (uf *uploadFile) sha256State() (hash.Hash, error) {
	h := sha256.New()
	if len(uf.u.HashState) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(uf.u.HashState); err == nil {
			return h, nil
		}
		h.Reset()
	}
	if _, err := io.Copy(h, io.NewSectionReader(uf.f, 0, uf.u.Received)); err != nil {
		return nil, fmt.Errorf("hash upload %s: %w", uf.u.ID, err)
	}
	return h, nil
}

// marshalHash saves the state of h (nil if it cannot: the next request hashes the file again).
func marshalHash(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil
	}
	return b
}

// appendBody appends body to the upload, from its counted end, and records what arrived
// (bytes and hash state) even when the body breaks off, so that a client can resume from
// the offset the status request then reports. Bytes past the counted end that an earlier
// broken request left are dropped first.
func (r *Registry) appendBody(ctx context.Context, uf *uploadFile, body io.Reader) (int64, error) {
	start := uf.u.Received
	if err := uf.f.Truncate(start); err != nil {
		return 0, fmt.Errorf("truncate upload %s: %w", uf.u.ID, err)
	}
	if _, err := uf.f.Seek(start, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek upload %s: %w", uf.u.ID, err)
	}
	h, err := uf.sha256State()
	if err != nil {
		return 0, err
	}
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	out := &writeErr{w: storage.NewWriteback(uf.f, start)}
	n, copyErr := io.CopyBuffer(io.MultiWriter(out, h), body, *bp)
	if out.err != nil {
		// The file could not take the bytes (a full disk): the hash lacks what the write kept
		// of the last chunk, so nothing of this request counts. The file goes back to the
		// counted end, which frees the space, and the client may resend from there.
		_ = uf.f.Truncate(start)
		return 0, fmt.Errorf("upload %s: write: %w", uf.u.ID, out.err)
	}
	if n == 0 && copyErr == nil {
		return 0, nil
	}
	db := r.cfg.DB.WithContext(context.WithoutCancel(ctx))
	ok, err := models.AdvanceUpload(db, uf.u, start, start+n, marshalHash(h))
	if err != nil {
		return n, err
	}
	if !ok {
		return n, oci.ErrBlobUploadUnknown.WithDetail("uuid", uf.u.ID)
	}
	if copyErr != nil {
		return n, fmt.Errorf("upload %s: reading the body: %w", uf.u.ID, copyErr)
	}
	return n, nil
}

// writeErr remembers the error of its writer, so that a copy's write failures are told from
// its read failures.
type writeErr struct {
	w   io.Writer
	err error
}

func (w *writeErr) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// finish checks that the upload's bytes have digest and commits them to storage as that
// blob (or drops them when storage has it already), with its blob row, pending in repository
// repoID (models.PendingBlob); the upload is gone afterwards either way. Bytes of another
// digest are dropped with DIGEST_INVALID.
func (r *Registry) finish(ctx context.Context, uf *uploadFile, digest, repoID string) error {
	alg, _, _ := storage.ParseDigest(digest)
	var sum string
	if alg == storage.AlgorithmSHA256 {
		h, err := uf.sha256State()
		if err != nil {
			return err
		}
		sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	} else {
		h := storage.NewHash(alg)
		if _, err := io.Copy(h, io.NewSectionReader(uf.f, 0, uf.u.Received)); err != nil {
			return fmt.Errorf("hash upload %s: %w", uf.u.ID, err)
		}
		sum = alg + ":" + hex.EncodeToString(h.Sum(nil))
	}
	if sum != digest {
		r.dropUpload(ctx, uf.u.ID)
		return oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	if err := uf.f.Truncate(uf.u.Received); err != nil {
		return fmt.Errorf("truncate upload %s: %w", uf.u.ID, err)
	}
	path, err := storage.BlobPath(digest)
	if err != nil {
		return oci.ErrDigestInvalid.WithDetail("digest", digest)
	}
	if _, err := r.cfg.Storage.Stat(ctx, path); err != nil {
		if err := r.commitFile(ctx, uf.f.Name(), path); err != nil {
			return fmt.Errorf("commit upload %s as blob %s: %w", uf.u.ID, digest, err)
		}
	}
	// Recorded even when the client has gone meanwhile: the bytes are committed already.
	err = r.cfg.DB.WithContext(context.WithoutCancel(ctx)).Transaction(func(tx *gorm.DB) error {
		b, err := models.GetOrCreateBlob(tx, &models.Blob{Digest: digest, Size: uf.u.Received})
		if err != nil {
			return err
		}
		return models.AddPendingBlob(tx, repoID, b.ID)
	})
	if err != nil {
		return fmt.Errorf("record blob %s: %w", digest, err)
	}
	r.dropUpload(ctx, uf.u.ID)
	r.log.Info("blob uploaded", "repo", uf.u.Name, "digest", digest, "size", uf.u.Received)
	return nil
}

// commitFile makes the local file at local the object at path: a rename when the driver can
// take it over, a copy otherwise.
func (r *Registry) commitFile(ctx context.Context, local, path string) error {
	if m, ok := r.cfg.Storage.(storage.Mover); ok {
		return m.Move(ctx, local, path)
	}
	src, err := os.Open(local)
	if err != nil {
		return err
	}
	defer src.Close()
	w, err := r.cfg.Storage.Writer(ctx, path)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	return w.Commit(ctx)
}

// dropUpload removes upload id: its row and its bytes.
func (r *Registry) dropUpload(ctx context.Context, id string) {
	if _, err := models.DeleteUpload(r.cfg.DB.WithContext(context.WithoutCancel(ctx)), id); err != nil {
		r.log.Warn("removing upload", "upload", id, "err", err)
	}
	if err := os.Remove(r.uploadPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("removing upload bytes", "upload", id, "err", err)
	}
}
