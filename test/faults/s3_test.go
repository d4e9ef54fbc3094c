package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/tmpfs"
)

// TestStorageFullS3 is the storage-full case on the S3 driver: SeaweedFS with its -dir on a
// small tmpfs, filled with a filler file while the topology pulls, pushes and syncs.
func TestStorageFullS3(t *testing.T) {
	client.NeedTools(t, "docker-registry", "redis-server", "redis-cli")
	dir := tmpfs.Mount(t, 192)
	// Volumes of 8 MiB, so that weed finds room for the ones it grows on the small tmpfs.
	weed := s3server.StartArgs(t, dir, "-master.volumeSizeLimitMB=8", "-volume.max=16")
	bucket := weed.NewBucket(t)
	hub := client.StartHub(t)
	tp := startTopology(t, hub, "", "--storage", "s3://"+bucket+"/pulp", "--s3-endpoint", weed.Endpoint,
		"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey)
	tp.newRecovery(t)
	storageFull(t, tp, dir, "storage full (S3 on SeaweedFS)")
	// Every blob in the bucket has the digest its key names.
	for obj := range weed.Client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: "pulp/blobs/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		r, err := weed.Client.GetObject(t.Context(), bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if name := obj.Key[strings.LastIndexByte(obj.Key, '/')+1:]; hex.EncodeToString(h.Sum(nil)) != name {
			t.Errorf("object %s in the bucket does not have its digest", obj.Key)
		}
	}
}
