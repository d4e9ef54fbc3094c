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

// endingPullThrough serves one image whose blob reader yields data and then ends with end:
// a fill whose bytes all arrived but failed verification (end is an error), or whose upstream
// sent more than it announced.
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

// TestFillingBlobNeverEndsCleanUnverified checks that a client reading a blob still being
// filled gets a complete body only when the reader confirms the end (a fill's reader does so
// only once the digest is verified): a fill that fails after its last byte, or an upstream
// that sends more than it announced, aborts the transfer.
func TestFillingBlobNeverEndsCleanUnverified(t *testing.T) {
	f := newFixture(t)
	data := bytes.Repeat([]byte("x"), 100_000)
	d := oci.Digest(data)
	tests := []struct {
		name  string
		p     *endingPullThrough
		rng   string
		clean bool
	}{
		{name: "verified", p: &endingPullThrough{size: int64(len(data)), data: data, end: io.EOF}, clean: true},
		{name: "verification fails", p: &endingPullThrough{size: int64(len(data)), data: data, end: errors.New("digest mismatch")}},
		{name: "verification fails, range to the end", p: &endingPullThrough{size: int64(len(data)), data: data, end: errors.New("digest mismatch")},
			rng: fmt.Sprintf("bytes=%d-", len(data)-10)},
		{name: "longer than announced", p: &endingPullThrough{size: int64(len(data)) - 1, data: data, end: io.EOF}},
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
