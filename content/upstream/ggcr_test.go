package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// TestAgainstGGCRRegistry pulls through the client from go-containerregistry's in-memory
// registry, a second implementation of the distribution API.
func TestAgainstGGCRRegistry(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	const repo = "library/hello"

	put := func(method, path, contentType string, body []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := bytes.Repeat([]byte("layer!"), 1000)
	for _, b := range [][]byte{config, layer} {
		put(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		ociManifestType, digestOf(config), len(config), digestOf(layer), len(layer)))
	put(http.MethodPut, "/v2/"+repo+"/manifests/v1", ociManifestType, manifest)

	c := newClient(t, srv.URL)
	d, err := c.HeadManifest(ctx, repo, "v1", nil)
	want := Descriptor{Digest: digestOf(manifest), MediaType: ociManifestType, Size: int64(len(manifest))}
	if err != nil || d != want {
		t.Fatalf("HeadManifest = %+v, %v; want %+v", d, err, want)
	}
	body, d, err := c.GetManifest(ctx, repo, want.Digest, nil)
	if err != nil || d != want || !bytes.Equal(body, manifest) {
		t.Fatalf("GetManifest = %+v, %v", d, err)
	}
	size, err := c.HeadBlob(ctx, repo, digestOf(layer))
	if err != nil || size != int64(len(layer)) {
		t.Fatalf("HeadBlob = %d, %v", size, err)
	}
	// (Offsets are not tried here: this registry only understands closed ranges, bytes=a-b.)
	rc, size, err := c.GetBlob(ctx, repo, digestOf(layer), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, layer) || size != int64(len(layer)) {
		t.Fatalf("GetBlob = %d bytes, size %d, %v", len(got), size, err)
	}
	tags, err := c.Tags(ctx, repo)
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("Tags = %q, %v", tags, err)
	}
	if _, err := c.HeadManifest(ctx, repo, "missing", nil); !IsNotFound(err) {
		t.Errorf("missing tag: %v", err)
	}
	if _, _, err := c.GetManifest(ctx, "library/other", "v1", nil); !IsNotFound(err) {
		t.Errorf("missing repository: %v", err)
	}
	if _, _, err := c.GetBlob(ctx, repo, digestOf([]byte("missing")), 0); !IsNotFound(err) {
		t.Errorf("missing blob: %v", err)
	}
}
