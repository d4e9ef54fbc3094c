package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HeadBlob asks the upstream whether repo has the blob digest and returns its size (-1 when
// the answer had no Content-Length). Redirects are followed. A Docker-Content-Digest header
// that names another blob is an error wrapping ErrDigestMismatch.
func (c *Client) HeadBlob(ctx context.Context, repo, digest string) (int64, error) {
	k := call{op: "head blob", repo: repo, ref: digest}
	if err := checkDigest(k.op, repo, digest); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	resp, err := c.send(ctx, k, http.MethodHead, c.v2URL(repo, "blobs", digest), nil)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(k.op, repo, digest, resp)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != digest {
		return 0, k.fail(ErrDigestMismatch, "Docker-Content-Digest is "+quoteBad(h))
	}
	return resp.ContentLength, nil
}

// GetBlob streams repo's blob digest from offset on (offset > 0 sends Range: bytes=offset-).
// It returns the live body, which the caller must close and should hash, and the number of
// bytes it will yield (Content-Length, or -1 when unknown). Redirects to a CDN are followed
// without the registry's credentials. Config.Timeout bounds the wait for the response
// headers; after that there is no total limit, but each read fails with ErrTimeout when no
// byte arrives within Config.IdleTimeout. Read errors are *Error values too.
func (c *Client) GetBlob(ctx context.Context, repo, digest string, offset int64) (io.ReadCloser, int64, error) {
	k := call{op: "get blob", repo: repo, ref: digest}
	if err := checkDigest(k.op, repo, digest); err != nil {
		return nil, 0, err
	}
	if offset < 0 {
		return nil, 0, k.fail(ErrInvalidOffset, strconv.FormatInt(offset, 10))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	// One timer watches the request: first for the headers, then for each read.
	timer := time.AfterFunc(c.timeout, func() { cancel(ErrTimeout) })
	fail := func(err error) (io.ReadCloser, int64, error) {
		timer.Stop()
		cancel(nil)
		return nil, 0, err
	}
	var hdr http.Header
	if offset > 0 {
		hdr = http.Header{"Range": {"bytes=" + strconv.FormatInt(offset, 10) + "-"}}
	}
	resp, err := c.send(ctx, k, http.MethodGet, c.v2URL(repo, "blobs", digest), hdr)
	if err != nil {
		return fail(err)
	}
	timer.Stop()
	body := &blobReader{k: k, obs: c.observer, ctx: ctx, cancel: cancel, timer: timer, idle: c.idle, rc: resp.Body}
	size := resp.ContentLength
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, ok := rangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			body.Close()
			return fail(k.fail(ErrBadResponse, "Content-Range does not start at "+strconv.FormatInt(offset, 10)))
		}
	case resp.StatusCode == http.StatusOK && offset > 0:
		// The upstream ignored the range: skip to offset ourselves.
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			body.Close()
			if errors.Is(err, io.EOF) {
				err = k.fail(ErrBadResponse, "blob is shorter than the offset")
			}
			return fail(err)
		}
		if size >= 0 {
			size -= offset
		}
	case resp.StatusCode != http.StatusOK:
		timer.Stop()
		err := statusError(k.op, repo, digest, resp)
		cancel(nil)
		return nil, 0, err
	}
	return body, size, nil
}

// rangeStart parses the first byte position of a Content-Range header "bytes a-b/n".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	return n, err == nil && n >= 0
}

// blobReader is a blob body under an idle watchdog: each Read must make progress within idle,
// or the request is cancelled with ErrTimeout. Time the caller spends between reads does not
// count. Errors other than io.EOF come back as *Error.
type blobReader struct {
	k      call
	obs    Observer
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
	rc     io.ReadCloser
	once   sync.Once
}

// Read reads from the body with the idle watchdog armed for the duration of the call.
func (r *blobReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.idle)
	n, err := r.rc.Read(p)
	r.timer.Stop()
	if n > 0 {
		r.obs.UpstreamBytes(KindBlobGet, n)
	}
	if err != nil && err != io.EOF {
		err = r.k.netError(r.ctx, err)
	}
	return n, err
}

// Close ends the request and releases its connection.
func (r *blobReader) Close() error {
	var err error
	r.once.Do(func() {
		r.timer.Stop()
		err = r.rc.Close()
		r.cancel(nil)
	})
	return err
}
