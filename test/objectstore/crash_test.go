package objectstore

import (
	"fmt"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
)

// TestKilledFillUploadSwept kills serve (SIGKILL) in the middle of a fill on S3, once the
// fill's multipart upload has its first part: the bucket then holds an unfinished upload and
// no object. The restarted serve aborts the upload (it owns its storage, so it sweeps them
// all at start), and a pull of the blob then fills it whole.
func TestKilledFillUploadSwept(t *testing.T) {
	ctx := client.Context(t)
	hub, big, weed, bucket, srv := startCache(t, 40)
	reg := &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()}
	name := "docker-cache/" + big.Name
	if _, _, _, err := reg.Manifest(ctx, name, big.Tag); err != nil {
		t.Fatal(err)
	}
	layer := big.Layers[0]
	uploads := func() (int, string) {
		n, keys := 0, ""
		for u := range weed.Client.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			n, keys = n+1, keys+" "+u.Key
		}
		return n, keys
	}

	// 40 MiB at 8 MiB/s: the first 16 MiB part goes out after about 2 s, the fill needs 5.
	hub.SetBlobThrottle(8 << 20)
	go func() { _, _ = reg.Blob(ctx, name, layer.Digest) }() // cut by the kill
	client.Poll(t, "the fill's multipart upload", func() (bool, string) {
		n, keys := uploads()
		return n == 1, fmt.Sprintf("%d unfinished uploads:%s", n, keys)
	})
	srv.Kill()
	if _, err := weed.Client.StatObject(ctx, bucket, objectKey(layer.Digest), minioStat); err == nil {
		t.Fatal("the killed fill's blob is in the bucket")
	}

	hub.SetBlobThrottle(0)
	srv.Restart(t)
	client.Poll(t, "the restarted server to abort the unfinished upload", func() (bool, string) {
		n, keys := uploads()
		return n == 0, fmt.Sprintf("%d unfinished uploads:%s", n, keys)
	})
	if n, err := reg.Blob(ctx, name, layer.Digest); err != nil || n != layer.Size {
		t.Fatalf("pull after the restart: %d bytes, %v", n, err)
	}
	wantInBucket(t, weed, bucket, big.Layers)
	if n, keys := uploads(); n != 0 {
		t.Errorf("%d unfinished uploads after the refill:%s", n, keys)
	}
}
