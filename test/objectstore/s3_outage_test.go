package objectstore

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/tmpfs"
)

// TestS3Outages runs serve on SeaweedFS whose -dir is a small tmpfs, with --storage-redirect:
//   - weed's disk full: the pull of an uncached image and the push of a blob answer 503
//     UNAVAILABLE (not 500), and nothing is left half-uploaded;
//   - weed stopped: GETs of stored blobs and manifests (pushed and cached) answer 503
//     UNAVAILABLE within a bounded time (client timeouts and retries), never 500 nor a hang;
//   - weed back (and its disk freed): the same pulls and the push succeed, skopeo verifying
//     every digest.
func TestS3Outages(t *testing.T) {
	client.NeedTools(t, "skopeo")
	dir := tmpfs.Mount(t, 160)
	ctx := client.Context(t)
	hub := client.StartHub(t)
	cached := pushLarge(t, hub, "library/cached", 4)
	// More than one part (16 MiB): its fill's multipart upload fails on the full store and
	// must be aborted.
	fresh := pushLarge(t, hub, "library/fresh", 20)
	small := pushSmall(t, hub)
	weed := s3server.StartVolumes(t, dir, 8)
	bucket := weed.NewBucket(t)
	srv := harness.Start(t, harness.Options{Binary: os.Getenv("PULPGO_TEST_BINARY"),
		Args: []string{"--storage", "s3://" + bucket + "/" + prefix, "--s3-endpoint", weed.Endpoint,
			"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey, "--storage-redirect"}})
	api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "docker-cache", hub.URL(), nil, nil)
	home := harness.NewClientHome(t, srv)
	creds := harness.Username + ":" + harness.Password
	hubAddr := strings.TrimPrefix(hub.URL(), "http://")
	pull := func(name, ref string, extra ...string) harness.Result {
		args := append([]string{"copy", "--quiet", "--src-tls-verify=false"}, extra...)
		return home.Run(t, "skopeo", append(args, "docker://"+srv.Addr+"/"+name+"/"+ref, "dir:"+filepath.Join(home.Dir, rand.Text()))...)
	}
	// Cached and pushed content, while the store works.
	pull("docker-cache", cached.Ref()).Must(t)
	wantInBucket(t, weed, bucket, blobsOf(cached))
	home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
		"docker://"+hubAddr+"/"+small.Ref(), "docker://"+srv.Addr+"/team/busybox:v1").Must(t)
	reg := &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient(), User: harness.Username, Pass: harness.Password}
	get := func(method, path string) answer {
		t.Helper()
		// Bounded, so that a request that hangs fails the test instead of holding it.
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		resp, err := reg.Request(rctx, method, path, http.Header{"Accept": {client.ManifestAccept}})
		if err != nil {
			t.Fatal(err)
		}
		return readAnswer(t, resp)
	}

	t.Run("disk full", func(t *testing.T) {
		filler := tmpfs.Fill(t, dir, 0)
		defer filler.Remove(t)
		// The uncached image: its manifest and blobs are served from their fills (the client
		// gets verified bytes before the commit to the store, which fails) or answered 503;
		// never a 500, and nothing is stored.
		manifest := get(http.MethodGet, "/v2/docker-cache/"+fresh.Name+"/manifests/"+fresh.Tag)
		wantServedOrUnavailable(t, manifest, fresh.ManifestDigest)
		layer := fresh.Layers[0]
		wantServedOrUnavailable(t, get(http.MethodGet, "/v2/docker-cache/"+fresh.Name+"/blobs/"+layer.Digest), layer.Digest)
		// A push: the upload's bytes are local, its commit to the store fails: 503.
		chunk := make([]byte, 1<<20)
		_, _ = rand.Read(chunk)
		wantUnavailable(t, push(t, srv, http.MethodPost, "/v2/team/pushed/blobs/uploads/?digest="+client.Digest(chunk),
			http.Header{"Content-Type": {"application/octet-stream"}}, chunk))
		client.Poll(t, "the failed fill's upload aborted", func() (bool, string) {
			for u := range weed.Client.ListIncompleteUploads(context.Background(), bucket, "", true) {
				return false, u.Key
			}
			return true, ""
		})
		if _, err := weed.Client.StatObject(ctx, bucket, objectKey(layer.Digest), minioStat); err == nil {
			t.Errorf("blob %s is in the full store", layer.Digest)
		}
	})

	t.Run("store stopped", func(t *testing.T) {
		weed.Stop()
		for _, tt := range []struct {
			path string
			// pullThrough: a cache may answer from upstream (HEAD) or from the database
			// (a manifest) instead of the store.
			pullThrough bool
		}{
			{"/v2/docker-cache/" + cached.Name + "/blobs/" + cached.Layers[0].Digest, true},
			{"/v2/docker-cache/" + cached.Name + "/manifests/" + cached.Tag, true},
			{"/v2/team/busybox/blobs/" + small.Layers[0].Digest, false},
			{"/v2/team/busybox/manifests/v1", false},
		} {
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				start := time.Now()
				a := get(method, tt.path)
				t.Logf("%s %s with the store stopped: %d in %v", method, tt.path, a.StatusCode, time.Since(start).Round(time.Millisecond))
				switch {
				case a.StatusCode == http.StatusOK && tt.pullThrough:
				case method == http.MethodHead && a.StatusCode == http.StatusServiceUnavailable:
				case method == http.MethodGet:
					wantUnavailable(t, a)
				default:
					t.Errorf("%s %s = %d with the store stopped, want 503", method, tt.path, a.StatusCode)
				}
			}
		}
	})

	t.Run("store back", func(t *testing.T) {
		weed.Restart(t)
		pull("docker-cache", cached.Ref()).Must(t)
		pull("docker-cache", fresh.Ref()).Must(t)
		wantInBucket(t, weed, bucket, blobsOf(fresh))
		pull("team", "busybox:v1", "--src-creds", creds).Must(t)
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
			"docker://"+hubAddr+"/"+small.Ref(), "docker://"+srv.Addr+"/team/again:v1").Must(t)
		for u := range weed.Client.ListIncompleteUploads(context.Background(), bucket, "", true) {
			t.Errorf("unfinished multipart upload left: %s (%v)", u.Key, u.Err)
		}
	})
}

// wantServedOrUnavailable checks an answer that is either the content of digest, whole, or
// 503 UNAVAILABLE.
func wantServedOrUnavailable(t *testing.T, a answer, digest string) {
	t.Helper()
	t.Logf("%s %s: %d", a.Request.Method, a.path(), a.StatusCode)
	if a.StatusCode == http.StatusOK {
		if got := client.Digest(a.body); got != digest {
			t.Errorf("%s %s = 200 with content of digest %s, want %s", a.Request.Method, a.path(), got, digest)
		}
		return
	}
	wantUnavailable(t, a)
}
