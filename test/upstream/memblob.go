package upstream

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// memBlob is a blob built in memory, with its diff ID when it is a layer.
type memBlob struct {
	data           []byte
	digest, diffID string
}

func newMemBlob(data []byte) memBlob {
	sum := sha256.Sum256(data)
	return memBlob{data: data, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// memLayer builds a gzipped layer of one directory and its files in memory.
func memLayer(files ...textFile) (memBlob, error) {
	var plain, zipped bytes.Buffer
	tw := tar.NewWriter(&plain)
	if err := textLayer("etc", files...)(tw); err != nil {
		return memBlob{}, err
	}
	if err := tw.Close(); err != nil {
		return memBlob{}, err
	}
	sum := sha256.Sum256(plain.Bytes())
	gz, err := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
	if err != nil {
		return memBlob{}, err
	}
	if _, err := gz.Write(plain.Bytes()); err != nil {
		return memBlob{}, err
	}
	if err := gz.Close(); err != nil {
		return memBlob{}, err
	}
	b := newMemBlob(zipped.Bytes())
	b.diffID = "sha256:" + hex.EncodeToString(sum[:])
	return b, nil
}

// uploadBlob pushes b into the registry's repository name (a POST, then a
// monolithic PUT).
func (u *Upstream) uploadBlob(ctx context.Context, name string, b memBlob) error {
	resp, err := u.registryDo(ctx, http.MethodPost, "/v2/"+name+"/blobs/uploads/", "", nil, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", b.digest, name, err)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload %s to %s: bad Location: %w", b.digest, name, err)
	}
	q := loc.Query()
	q.Set("digest", b.digest)
	loc.RawQuery = q.Encode()
	if _, err := u.registryDo(ctx, http.MethodPut, loc.RequestURI(), "application/octet-stream", b.data, http.StatusCreated); err != nil {
		return fmt.Errorf("upload %s to %s: %w", b.digest, name, err)
	}
	return nil
}

// registryDo sends one request to the registry at path (a path and query)
// and checks the status; the body is read and closed.
func (u *Upstream) registryDo(ctx context.Context, method, path, contentType string, body []byte, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.registryURL()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: registry answered %s, want %d: %s", method, path, resp.Status, want, bytes.TrimSpace(msg))
	}
	return resp, nil
}
