package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
)

// endingPullThrough serves one image whose blob (of size bytes) has a reader that yields
// data and then ends with end: io.EOF, or an error as a fill's reader returns one when the
// fill fails (before the blob's last byte, which it holds back until verification).
type endingPullThrough struct {
	size int64
	data []byte
	end  error
}

func (p *endingPullThrough) Image(context.Context, *models.Distribution, string) (Image, error) {
	return &endingImage{p: p}, nil
}

func (p *endingPullThrough) Child(context.Context, *models.Distribution) (Image, error) {
	return &endingImage{p: p}, nil
}

type endingImage struct{ p *endingPullThrough }

func (img *endingImage) Name() string                           { return "x" }
func (img *endingImage) Tags(context.Context) ([]string, error) { return nil, nil }
func (img *endingImage) Manifest(context.Context, string) (*oci.Manifest, error) {
	return nil, oci.ErrManifestUnknown
}

func (img *endingImage) Blob(_ context.Context, digest string, _ bool) (*BlobContent, error) {
	open := func(_ context.Context, off int64) io.ReadCloser {
		return &failingReader{r: bytes.NewReader(img.p.data[off:]), err: img.p.end}
	}
	return &BlobContent{Digest: digest, Size: img.p.size, Open: open}, nil
}

// TestStreamAbortsUnlessTheReaderEnds checks that the registry's copy of a blob being filled
// ends cleanly only when the reader gave every announced byte and io.EOF: a reader that fails
// (at any point: a fill's reader fails before the last byte when verification fails) or ends
// early aborts the transfer, so that the client never mistakes it for a complete one. That no
// reader gets the last byte of an unverified blob is the fill's reader's rule (content/fill).
func TestStreamAbortsUnlessTheReaderEnds(t *testing.T) {
	f := newFixture(t)
	data := bytes.Repeat([]byte("x"), 100_000)
	d := oci.Digest(data)
	n := int64(len(data))
	mismatch := errors.New("digest mismatch")
	tests := []struct {
		name  string
		p     *endingPullThrough
		rng   string
		clean bool
	}{
		{name: "verified", p: &endingPullThrough{size: n, data: data, end: io.EOF}, clean: true},
		{name: "range to the end, verified", p: &endingPullThrough{size: n, data: data, end: io.EOF},
			rng: fmt.Sprintf("bytes=%d-", n-10), clean: true},
		{name: "verification fails", p: &endingPullThrough{size: n, data: data[:n-1], end: mismatch}},
		{name: "verification fails, range to the end", p: &endingPullThrough{size: n, data: data[:n-1], end: mismatch},
			rng: fmt.Sprintf("bytes=%d-", n-10)},
		{name: "upstream fails mid-stream", p: &endingPullThrough{size: n, data: data[:n/2], end: errors.New("connection reset")}},
		{name: "reader ends early", p: &endingPullThrough{size: n, data: data[:n-1], end: io.EOF}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := f.server(t, tc.p)
			req, err := newGet(srv.URL + "/v2/docker-cache/library/x/blobs/" + d)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				if tc.clean {
					t.Fatal(err)
				}
				return // aborted before the headers went out
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if tc.clean && err != nil {
				t.Fatalf("read %d bytes, err %v; want a clean end", len(body), err)
			}
			if !tc.clean && err == nil {
				t.Fatalf("status %d: read %d bytes and a clean end; want the transfer aborted", resp.StatusCode, len(body))
			}
		})
	}
}

func newGet(url string) (*http.Request, error) { return http.NewRequest(http.MethodGet, url, nil) }
