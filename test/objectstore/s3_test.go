package objectstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// prefix is where the servers keep their objects in the bucket.
const prefix = "pulp"

// minioStat are the options of the tests' StatObject calls.
var minioStat = minio.StatObjectOptions{}

// objectKey is the key of a blob in the bucket.
func objectKey(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return prefix + "/blobs/sha256/" + hex[:2] + "/" + hex
}

// wantInBucket waits until every blob is an object of its size in bucket: a fill commits
// (completes its multipart upload) after its readers have had the verified bytes, so just
// after a pull the last commits may still be running.
func wantInBucket(t *testing.T, weed *s3server.Server, bucket string, blobs []upstream.Blob) {
	t.Helper()
	client.Poll(t, "the blobs in the bucket", func() (bool, string) {
		for _, b := range blobs {
			info, err := weed.Client.StatObject(t.Context(), bucket, objectKey(b.Digest), minioStat)
			if err != nil {
				return false, fmt.Sprintf("blob %s: %v", b.Digest, err)
			}
			if info.Size != b.Size {
				t.Fatalf("blob %s: %d bytes in the bucket, want %d", b.Digest, info.Size, b.Size)
			}
		}
		return true, ""
	})
}

// wantDirBlobs checks the blobs skopeo copied into dir (named by their hex digest) against
// their digests.
func wantDirBlobs(t *testing.T, dir string, blobs []upstream.Blob) {
	t.Helper()
	for _, b := range blobs {
		hexDigest := strings.TrimPrefix(b.Digest, "sha256:")
		data, err := os.ReadFile(filepath.Join(dir, hexDigest))
		if err != nil {
			t.Errorf("blob %s not copied: %v", b.Digest, err)
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != hexDigest {
			t.Errorf("blob %s copied with other bytes", b.Digest)
		}
	}
}

func blobsOf(im upstream.Image) []upstream.Blob {
	return append([]upstream.Blob{*im.Config}, im.Layers...)
}

// TestServeOnS3 runs serve on S3 storage: a pull-through pull with skopeo (layers of more than
// one multipart part) lands every blob in the bucket, a push with skopeo too, and both pull
// back with their digests; a repository sync's blobs land there too; the S3 secret key never shows in the log. The credentials come
// from flags on the first engine's server and from the AWS environment on the second's.
func TestServeOnS3(t *testing.T) {
	client.NeedTools(t, "skopeo")
	ctx := client.Context(t)
	hub := client.StartHub(t)
	big, err := hub.PushLarge(ctx, "library/big", "v1", 2*20, 2)
	if err != nil {
		t.Fatal(err)
	}
	small, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	hubAddr := strings.TrimPrefix(hub.URL(), "http://")
	weed := s3server.Start(t, "")

	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		bucket := weed.NewBucket(t)
		opts := harness.Options{Engine: e, Binary: os.Getenv("PULPGO_TEST_BINARY"),
			Args: []string{"--storage", "s3://" + bucket + "/" + prefix}}
		if e.DatabaseURL == "" {
			opts.Args = append(opts.Args, "--s3-endpoint", weed.Endpoint, "--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey)
		} else {
			opts.Env = []string{"AWS_ENDPOINT_URL_S3=" + weed.Endpoint, "AWS_ACCESS_KEY_ID=" + s3server.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3server.SecretKey}
		}
		srv := harness.Start(t, opts)
		api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
		api.CreatePullThrough(t, "hub", "docker-cache", hub.URL(), nil, nil)
		home := harness.NewClientHome(t, srv)
		creds := harness.Username + ":" + harness.Password

		// Pull-through: skopeo verifies every blob's digest; the copy is checked again here.
		pulled := filepath.Join(home.Dir, "pulled")
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
			"docker://"+srv.Addr+"/docker-cache/"+big.Ref(), "dir:"+pulled).Must(t)
		wantDirBlobs(t, pulled, blobsOf(big))
		wantInBucket(t, weed, bucket, blobsOf(big))
		raw := home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+srv.Addr+"/docker-cache/"+big.Ref()).Must(t).Stdout
		if got := client.Digest([]byte(raw)); got != big.ManifestDigest {
			t.Errorf("docker-cache/%s is %s, upstream %s", big.Ref(), got, big.ManifestDigest)
		}

		// Push, and pull it back.
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
			"docker://"+hubAddr+"/"+small.Ref(), "docker://"+srv.Addr+"/team/busybox:v1").Must(t)
		wantInBucket(t, weed, bucket, blobsOf(small))
		back := filepath.Join(home.Dir, "back")
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-creds", creds,
			"docker://"+srv.Addr+"/team/busybox:v1", "dir:"+back).Must(t)
		wantDirBlobs(t, back, blobsOf(small))
		raw = home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://"+srv.Addr+"/team/busybox:v1").Must(t).Stdout
		if got := client.Digest([]byte(raw)); got != small.ManifestDigest {
			t.Errorf("team/busybox:v1 is %s, pushed %s", got, small.ManifestDigest)
		}

		// A repository sync (the worker's fills) lands its blobs in the bucket too.
		synced, err := hub.PushLarge(ctx, "library/synced", "v1", 18, 1)
		if err != nil {
			t.Fatal(err)
		}
		remote, repo := newSync(t, api, hub.URL(), "synced", synced.Name)
		task := api.WaitTask(t, postSync(t, api, repo, remote))
		if client.Str(task, "state") != "completed" {
			t.Fatalf("sync task: %v", task)
		}
		wantInBucket(t, weed, bucket, blobsOf(synced))

		// No multipart upload is left behind, and the secret never reached the log.
		for u := range weed.Client.ListIncompleteUploads(t.Context(), bucket, "", true) {
			t.Errorf("unfinished multipart upload left: %s (%v)", u.Key, u.Err)
		}
		log, err := os.ReadFile(srv.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(log), "\n") {
			// The harness's own lines show the command line it ran, secret flag and all.
			if !strings.HasPrefix(line, "=== harness:") && strings.Contains(line, s3server.SecretKey) {
				t.Errorf("the server's log shows the S3 secret key: %s", line)
			}
		}
	})
}

// TestStorageRedirect runs serve with --storage-redirect: once a blob is in the bucket, a GET
// of it is a 307 to a presigned URL on the S3 endpoint, which answers the whole blob and a
// Range; HEAD is answered by pulpgo; skopeo and podman pull through the redirects with every
// digest verified.
func TestStorageRedirect(t *testing.T) {
	client.NeedTools(t, "skopeo", "podman")
	ctx := client.Context(t)
	_, big, weed, bucket, srv := startCache(t, 20, "--storage-redirect")
	home := harness.NewClientHome(t, srv)
	ref := "docker://" + srv.Addr + "/docker-cache/" + big.Ref()

	// The first pull fills the cache (blobs are streamed from their fills, not redirected).
	home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", ref, "dir:"+filepath.Join(home.Dir, "first")).Must(t)
	wantInBucket(t, weed, bucket, blobsOf(big))

	noFollow := client.NewHTTPClient()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	reg := &client.Registry{Base: srv.URL, HTTP: noFollow}
	layer := big.Layers[0]
	path := "/v2/docker-cache/" + big.Name + "/blobs/" + layer.Digest
	resp, err := reg.Request(ctx, http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, weed.Endpoint+"/"+bucket+"/"+objectKey(layer.Digest)+"?") {
		t.Fatalf("GET %s = %d Location %q; want 307 to the object on %s", path, resp.StatusCode, loc, weed.Endpoint)
	}
	if !strings.Contains(loc, "X-Amz-Signature=") || !strings.Contains(loc, "X-Amz-Expires=600") {
		t.Errorf("Location %q is not a presigned URL valid 10 minutes", loc)
	}
	whole := fetch(t, loc, "", http.StatusOK)
	if sum := sha256.Sum256(whole); "sha256:"+hex.EncodeToString(sum[:]) != layer.Digest {
		t.Errorf("the presigned URL answered %d bytes that are not blob %s", len(whole), layer.Digest)
	}
	if got := fetch(t, loc, "bytes=1000-1999", http.StatusPartialContent); string(got) != string(whole[1000:2000]) {
		t.Errorf("Range bytes=1000-1999 on the presigned URL: %d bytes, not the blob's", len(got))
	}
	unsigned, _, _ := strings.Cut(loc, "?")
	if _, status := s3server.Get(t, unsigned, ""); status != http.StatusForbidden {
		t.Errorf("the object without the signature answers %d, want 403", status)
	}
	resp, err = reg.Request(ctx, http.MethodHead, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != layer.Size {
		t.Errorf("HEAD %s = %d, %d bytes; want 200 from pulpgo with the size %d", path, resp.StatusCode, resp.ContentLength, layer.Size)
	}

	// skopeo and podman follow the redirects and verify the digests.
	second := filepath.Join(home.Dir, "second")
	home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", ref, "dir:"+second).Must(t)
	wantDirBlobs(t, second, blobsOf(big))
	home.PodmanEnv(t)
	home.Run(t, "podman", "pull", "--quiet", srv.Addr+"/docker-cache/"+big.Ref()).Must(t)
	id := strings.TrimSpace(home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", srv.Addr+"/docker-cache/"+big.Ref()).Must(t).Stdout)
	if id != big.ManifestDigest {
		t.Errorf("podman pulled %s, want %s", id, big.ManifestDigest)
	}
}

// startCache starts the Docker Hub fake with library/big:v1 (mib MiB in one layer), weed with a
// new bucket, and serve on it (with extra arguments) with the pull-through distribution
// docker-cache of the hub.
func startCache(t *testing.T, mib int, extra ...string) (*upstream.Upstream, upstream.Image, *s3server.Server, string, *harness.Server) {
	t.Helper()
	hub := client.StartHub(t)
	big, err := hub.PushLarge(client.Context(t), "library/big", "v1", mib, 1)
	if err != nil {
		t.Fatal(err)
	}
	weed := s3server.Start(t, "")
	bucket := weed.NewBucket(t)
	srv := harness.Start(t, harness.Options{Binary: os.Getenv("PULPGO_TEST_BINARY"),
		Args: append([]string{"--storage", "s3://" + bucket + "/" + prefix, "--s3-endpoint", weed.Endpoint,
			"--s3-access-key", s3server.AccessKey, "--s3-secret-key", s3server.SecretKey}, extra...)})
	api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "docker-cache", hub.URL(), nil, nil)
	return hub, big, weed, bucket, srv
}

// fetch GETs url (with a Range when rng is set), wants status, and returns the body.
func fetch(t *testing.T, url, rng string, status int) []byte {
	t.Helper()
	body, got := s3server.Get(t, url, rng)
	if got != status {
		t.Fatalf("GET %s (Range %q) = %d, want %d: %.200s", url, rng, got, status, body)
	}
	return body
}

// newSync creates a remote of upstream name on url and a repository, both called name, and
// returns their hrefs.
func newSync(t *testing.T, api *client.API, url, name, upstreamName string) (remote, repo string) {
	t.Helper()
	remote = client.Str(post(t, api, "/pulp/api/v3/remotes/container/container/",
		map[string]any{"name": name, "url": url, "upstream_name": upstreamName}, http.StatusCreated), "pulp_href")
	repo = client.Str(post(t, api, "/pulp/api/v3/repositories/container/container/", map[string]any{"name": name}, http.StatusCreated), "pulp_href")
	return remote, repo
}

// postSync starts a sync of repo from remote and returns its task's href.
func postSync(t *testing.T, api *client.API, repo, remote string) string {
	t.Helper()
	return client.Str(post(t, api, repo+"sync/", map[string]any{"remote": remote}, http.StatusAccepted), "task")
}

// post POSTs body to path, wants status want, and returns the answer's object.
func post(t *testing.T, api *client.API, path string, body map[string]any, want int) map[string]any {
	t.Helper()
	status, raw := api.Do(t, http.MethodPost, path, body)
	if status != want {
		t.Fatalf("POST %s: %d %s", path, status, raw)
	}
	return client.DecodeObject(t, raw)
}
