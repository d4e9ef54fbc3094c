package objectstore

import (
	"fmt"
	"os"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
)

// TestKilledFillUploadSwept kills serve (SIGKILL) in the middle of a fill on S3, once the
// fill's multipart upload has its first part: the bucket then holds an unfinished upload and
// no object. The restarted serve aborts the upload (it owns its storage, so it sweeps them
// all at start), and a pull of the blob then fills it whole.
func TestKilledFillUploadSwept(t *testing.T) {
	ctx := client.Context(t)
	hub := client.StartHub(t)
	big, err := hub.PushLarge(ctx, "library/big", "v1", 40, 1)
	if err != nil {
		t.Fatal(err)
	}
	weed := s3server.Start(t, "")
	bucket := weed.NewBucket(t)
	srv := harness.Start(t, harness.Options{Binary: os.Getenv("PULPGO_TEST_BINARY"),
		Args: []string{"--storage", "s3://" + bucket + "/" + prefix, "--s3-endpoint", weed.Endpoint,
			"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey}})
	api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "docker-cache", hub.URL(), nil, nil)
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
