package registry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/pulpgo/pulpgo/content/oci"
)

// copyBufferSize is the size of the one buffer a blob is streamed through.
const copyBufferSize = 64 << 10

// serveBlob answers GET and HEAD /v2/<name>/blobs/<digest>. A stored blob is served with
// http.ServeContent (ranges, conditional requests); a blob still being filled is streamed
// from its reader, with a single range supported, and a transfer that fails mid-stream is
// aborted so that the client never mistakes it for a complete one.
func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, img Image, digest string) {
	head := req.Method == http.MethodHead
	if r.cfg.Uses != nil && !head {
		defer r.cfg.Uses.Hold(req.Context(), digest)()
	}
	bc, err := img.Blob(req.Context(), digest, head)
	if err != nil {
		r.writeError(w, req, detailed(err, oci.ErrBlobUnknown, "digest", digest))
		return
	}
	if r.cfg.Pulls != nil && !head {
		r.cfg.Pulls.Note(digest)
	}
	if bc.File != nil {
		defer func() { _ = bc.File.Close() }()
	}
	etag := `"` + digest + `"`
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(headerContentDigest, digest)
	h.Set("ETag", etag)
	if bc.File != nil {
		if !head && r.redirectBlob(w, req, digest) {
			return
		}
		http.ServeContent(w, req, "", bc.ModTime, bc.File)
		return
	}
	if etagListMatches(req.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if bc.Size >= 0 {
		h.Set("Accept-Ranges", "bytes")
	}
	if head {
		if bc.Size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(bc.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if bc.Open == nil {
		r.writeError(w, req, fmt.Errorf("blob %s of %s: nothing to serve", digest, img.Name()))
		return
	}
	start, length, status := int64(0), bc.Size, http.StatusOK
	if rng := req.Header.Get("Range"); rng != "" && bc.Size >= 0 && ifRangeMatches(req.Header.Get("If-Range"), etag) {
		a, b, ok, satisfiable := parseRange(rng, bc.Size)
		switch {
		case ok && !satisfiable:
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", bc.Size))
			r.writeError(w, req, oci.ErrRangeInvalid)
			return
		case ok:
			start, length, status = a, b-a+1, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, bc.Size))
		}
	}
	r.stream(w, req, bc, start, length, status)
}

// stream copies the blob from start (length bytes, or to its end when length is -1) to the
// client through one pooled buffer, flushing as bytes arrive. It is a plain copy: the reader
// decides which bytes may go out (a fill's reader holds the blob's last byte back until the
// digest is verified, see oci.BlobContent.Open). A failure before the first byte is an error
// response; a failure after the headers went out, or a body shorter than announced, aborts the
// connection so that the client never mistakes it for a complete transfer.
func (r *Registry) stream(w http.ResponseWriter, req *http.Request, bc *BlobContent, start, length int64, status int) {
	rc := bc.Open(req.Context(), start)
	defer func() { _ = rc.Close() }()
	var src io.Reader = rc
	if length >= 0 {
		src = io.LimitReader(rc, length)
	}
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	buf := *bp

	n, rerr := readSome(src, buf)
	if n == 0 && rerr != nil && (rerr != io.EOF || length > 0) {
		if rerr == io.EOF {
			rerr = fmt.Errorf("blob %s: ended before its %d bytes", bc.Digest, length)
		}
		w.Header().Del("Content-Range")
		r.writeError(w, req, rerr)
		return
	}
	if length >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	}
	w.WriteHeader(status)
	rc2 := http.NewResponseController(w)
	var written int64
	if wt, ok := rc.(io.WriterTo); ok && rerr == nil && n > 0 && (length < 0 || start+length == bc.Size) {
		// The rest runs to the blob's end: the reader copies it itself (a fill's reader sends
		// its staging file with sendfile).
		if _, err := w.Write(buf[:n]); err != nil {
			return // the client went away
		}
		m, err := wt.WriteTo(w)
		written, n, rerr = int64(n)+m, 0, err
		if rerr == nil {
			rerr = io.EOF
		}
	}
	for {
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return // the client went away
			}
			written += int64(n)
			_ = rc2.Flush()
		}
		if rerr != nil {
			break
		}
		n, rerr = src.Read(buf)
	}
	if rerr == io.EOF && (length < 0 || written == length) {
		return
	}
	if rerr == io.EOF {
		rerr = fmt.Errorf("blob %s: ended after %d of its %d bytes: %w", bc.Digest, written, length, io.ErrUnexpectedEOF)
	}
	if req.Context().Err() != nil {
		r.log.Debug("blob transfer cancelled", "digest", bc.Digest, "written", written)
	} else {
		r.log.Warn("blob transfer failed; aborting the response", "digest", bc.Digest, "written", written, "err", rerr)
	}
	panic(http.ErrAbortHandler)
}

// readSome reads into buf until it gets bytes or an error; readers may return 0, nil.
func readSome(src io.Reader, buf []byte) (int, error) {
	for i := 0; i < 100; i++ {
		n, err := src.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

// parseRange parses a Range header for an object of size bytes. ok is false when the header
// is not a single byte range (it is then ignored and the whole object served); satisfiable is
// false when the range starts past the end. end is inclusive and clamped to the object.
func parseRange(s string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(s, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" { // the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		n = min(n, size)
		return size - n, size - 1, true, true
	}
	start, ok = parseDigits(first)
	if !ok {
		return 0, 0, false, false
	}
	end = size - 1
	if last != "" {
		if end, ok = parseDigits(last); !ok || end < start {
			return 0, 0, false, false
		}
	}
	if start >= size {
		return 0, 0, true, false
	}
	return start, min(end, size-1), true, true
}

// parseDigits parses a non-negative decimal number without sign.
func parseDigits(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// etagListMatches reports whether an If-None-Match header lists etag (or is "*").
func etagListMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// ifRangeMatches reports whether a Range header applies under the If-Range header ir.
func ifRangeMatches(ir, etag string) bool { return ir == "" || ir == etag }
