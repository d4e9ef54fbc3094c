package upstream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// start runs an upstream for the test, failing (never skipping) when the
// tools it needs are missing.
func start(t *testing.T, opts upstream.Options) *upstream.Upstream {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; these tests need it (apt-get install -y docker-registry skopeo busybox-static): %v", tool, err)
		}
	}
	u, err := upstream.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start upstream: %v", err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("close upstream: %v", err)
		}
	})
	return u
}

// pushSmall pushes the busybox image as library/busybox:latest.
func pushSmall(t *testing.T, u *upstream.Upstream) upstream.Image {
	t.Helper()
	img, err := u.PushSmall(t.Context(), "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// skopeoPull copies ref from the front into a dir: layout and returns its path.
func skopeoPull(ctx context.Context, u *upstream.Upstream, ref, dir string, extra ...string) (string, error) {
	args := append([]string{"--insecure-policy"}, extra...)
	args = append(args, "copy", "--quiet", "--src-tls-verify=false",
		"docker://"+strings.TrimPrefix(u.URL(), "http://")+"/"+ref, "dir:"+dir)
	out, err := exec.CommandContext(ctx, "skopeo", args...).CombinedOutput()
	return string(out), err
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// do sends a request with an optional bearer token and extra headers
// ("Name: value"), and returns the response with its body read.
func do(t *testing.T, method, url, token string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}

// token gets a pull token for repo from the front's /token endpoint.
func token(t *testing.T, u *upstream.Upstream, repo string) string {
	t.Helper()
	resp, body := do(t, http.MethodGet, u.URL()+"/token?service=registry.test&scope=repository:"+repo+":pull", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token for %s: %s: %s", repo, resp.Status, body)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatalf("token body %s: %v", body, err)
	}
	if _, err := time.Parse(time.RFC3339, tok.IssuedAt); err != nil || tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn != 300 {
		t.Fatalf("token body %s: want token = access_token, expires_in 300, RFC 3339 issued_at", body)
	}
	return tok.Token
}

// fileDigest returns the sha256 digest of a file.
func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestPullThroughFront(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	small := pushSmall(t, u)
	index, err := u.PushIndex(t.Context(), "library/multi", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if small.MediaType != upstream.MediaTypeDockerManifest || small.Config == nil || len(small.Layers) != 1 {
		t.Fatalf("small image = %+v, want a Docker schema 2 image of one layer", small)
	}
	if index.MediaType != upstream.MediaTypeOCIIndex || len(index.Children) != 2 || len(index.Blobs()) != 4 {
		t.Fatalf("index = %+v, want an OCI index of two images with their own config and layer", index)
	}

	t.Run("busybox", func(t *testing.T) {
		u.Reset()
		dir := t.TempDir()
		if out, err := skopeoPull(t.Context(), u, "library/busybox:latest", dir); err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		c := u.Counts()
		t.Logf("counts after the pull: %+v", c)
		if c.TokenRequests == 0 || c.ManifestGets == 0 {
			t.Errorf("counts = %+v, want token requests and manifest GETs", c)
		}
		blobs := small.Blobs()
		if c.BlobGets != len(blobs) || c.CDNGets != len(blobs) {
			t.Errorf("blob GETs = %d, CDN GETs = %d, want %d each", c.BlobGets, c.CDNGets, len(blobs))
		}
		for _, b := range blobs {
			if u.BlobGets(b.Digest) != 1 || u.CDNGets(b.Digest) != 1 {
				t.Errorf("blob %s: %d front GETs, %d CDN GETs, want 1 each", b.Digest, u.BlobGets(b.Digest), u.CDNGets(b.Digest))
			}
			if got := fileDigest(t, filepath.Join(dir, strings.TrimPrefix(b.Digest, "sha256:"))); got != b.Digest {
				t.Errorf("pulled blob %s hashes to %s", b.Digest, got)
			}
		}
		if c.CDNAuthorization != 0 {
			t.Errorf("the CDN saw %d requests with an Authorization header, want 0", c.CDNAuthorization)
		}
		if got := fileDigest(t, filepath.Join(dir, "manifest.json")); got != small.ManifestDigest {
			t.Errorf("pulled manifest digest = %s, want %s", got, small.ManifestDigest)
		}
	})

	t.Run("index arm64", func(t *testing.T) {
		u.Reset()
		out, err := skopeoPull(t.Context(), u, "library/multi:latest", t.TempDir(), "--override-arch", "arm64")
		if err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		arm, _ := index.Child("linux/arm64")
		amd, _ := index.Child("linux/amd64")
		for _, b := range arm.Blobs() {
			if u.CDNGets(b.Digest) != 1 {
				t.Errorf("arm64 blob %s: %d CDN GETs, want 1", b.Digest, u.CDNGets(b.Digest))
			}
		}
		for _, b := range amd.Blobs() {
			if u.BlobGets(b.Digest) != 0 {
				t.Errorf("amd64 blob %s was fetched for an arm64 pull", b.Digest)
			}
		}
		if c := u.Counts(); c.ManifestGets < 2 || c.CDNAuthorization != 0 {
			t.Errorf("counts = %+v, want the index and the arm64 manifest, and no Authorization at the CDN", c)
		}
	})
}

func TestFrontAPI(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	small := pushSmall(t, u)
	layer := small.Layers[0].Digest
	busybox, other := token(t, u, "library/busybox"), token(t, u, "library/other")
	realm := `Bearer realm="` + u.URL() + `/token",service="registry.test"`

	tests := []struct {
		name, method, path, token string
		code                      int
		header, want              string // a response header and its value
	}{
		{"ping without token", "GET", "/v2/", "", 401, "WWW-Authenticate", realm},
		{"ping with token", "GET", "/v2/", other, 200, "", ""},
		{"manifest without token", "GET", "/v2/library/busybox/manifests/latest", "", 401,
			"WWW-Authenticate", realm + `,scope="repository:library/busybox:pull"`},
		{"manifest with another repository's token", "GET", "/v2/library/busybox/manifests/latest", other, 401, "", ""},
		{"manifest with a bad token", "GET", "/v2/library/busybox/manifests/latest", "nope", 401, "", ""},
		{"manifest GET", "GET", "/v2/library/busybox/manifests/latest", busybox, 200, "Docker-Content-Digest", small.ManifestDigest},
		{"manifest HEAD", "HEAD", "/v2/library/busybox/manifests/latest", busybox, 200, "Content-Type", upstream.MediaTypeDockerManifest},
		{"manifest by digest", "GET", "/v2/library/busybox/manifests/" + small.ManifestDigest, busybox, 200, "", ""},
		{"unknown manifest", "GET", "/v2/library/busybox/manifests/nope", busybox, 404, "", ""},
		{"tags list", "GET", "/v2/library/busybox/tags/list", busybox, 200, "", ""},
		{"blob HEAD", "HEAD", "/v2/library/busybox/blobs/" + layer, busybox, 200, "Docker-Content-Digest", layer},
		{"blob GET redirects", "GET", "/v2/library/busybox/blobs/" + layer, busybox, 307, "", ""},
		{"unknown blob", "GET", "/v2/library/busybox/blobs/sha256:" + strings.Repeat("0", 64), busybox, 404, "", ""},
		{"push refused", "PUT", "/v2/library/busybox/manifests/latest", busybox, 405, "", ""},
		{"unknown route", "GET", "/v2/library/busybox/blobs/uploads/", busybox, 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, u.URL()+tc.path, tc.token, "Accept: "+upstream.MediaTypeDockerManifest)
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: %s, want %d: %s", tc.method, tc.path, resp.Status, tc.code, body)
			}
			if tc.header != "" && resp.Header.Get(tc.header) != tc.want {
				t.Errorf("%s = %q, want %q", tc.header, resp.Header.Get(tc.header), tc.want)
			}
		})
	}

	t.Run("blob redirect goes to the CDN with a signature", func(t *testing.T) {
		resp, _ := do(t, "GET", u.URL()+"/v2/library/busybox/blobs/"+layer, busybox)
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, u.CDNURL()+"/cdn/library/busybox/"+layer+"?") || !strings.Contains(loc, "sig=") {
			t.Fatalf("Location = %q, want a signed URL on the CDN %s", loc, u.CDNURL())
		}
		resp, body := do(t, "GET", loc, "")
		if resp.StatusCode != 200 || int64(len(body)) != small.Layers[0].Size {
			t.Fatalf("CDN GET: %s, %d bytes, want 200 and %d bytes", resp.Status, len(body), small.Layers[0].Size)
		}
		resp, part := do(t, "GET", loc, "", "Range: bytes=10-19")
		if resp.StatusCode != 206 || !bytes.Equal(part, body[10:20]) {
			t.Errorf("CDN range GET: %s, %q, want 206 and %q", resp.Status, part, body[10:20])
		}
		if resp, _ := do(t, "GET", strings.Replace(loc, "sig=", "sig=0", 1), ""); resp.StatusCode != 403 {
			t.Errorf("CDN GET with a bad signature: %s, want 403", resp.Status)
		}
		if do(t, "GET", loc, busybox); u.Counts().CDNAuthorization != 1 {
			t.Errorf("CDN authorization count = %d after one request with a token, want 1", u.Counts().CDNAuthorization)
		}
	})
}

func TestTokenCredentials(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{Username: "alice", Password: "secret"})
	tokenURL := u.URL() + "/token?service=registry.test&scope=repository:library/busybox:pull"
	for _, tc := range []struct {
		name, user, password string
		code                 int
	}{
		{"none", "", "", 401},
		{"wrong password", "alice", "guess", 401},
		{"right", "alice", "secret", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", tokenURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("token with %s credentials: %s, want %d", tc.name, resp.Status, tc.code)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	u := start(t, upstream.Options{})
	small := pushSmall(t, u)
	tok := token(t, u, "library/busybox")
	manifestURL := u.URL() + "/v2/library/busybox/manifests/latest"
	resp, _ := do(t, "GET", u.URL()+"/v2/library/busybox/blobs/"+small.Layers[0].Digest, tok)
	cdnURL := resp.Header.Get("Location")
	_, layer := do(t, "GET", cdnURL, "")

	t.Run("too many requests", func(t *testing.T) {
		u.SetTooManyRequests(true)
		resp, body := do(t, "GET", manifestURL, tok)
		u.SetTooManyRequests(false)
		var e struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != 429 || len(e.Errors) != 1 || e.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Fatalf("rate-limited manifest GET: %s %s, want 429 TOOMANYREQUESTS", resp.Status, body)
		}
		if resp, _ := do(t, "GET", manifestURL, tok); resp.StatusCode != 200 {
			t.Errorf("after the switch is off: %s, want 200", resp.Status)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		u.SetCorrupt(true)
		defer u.SetCorrupt(false)
		_, body := do(t, "GET", cdnURL, "")
		if len(body) != len(layer) || bytes.Equal(body, layer) {
			t.Errorf("corrupt body: %d bytes (equal: %v), want %d different bytes", len(body), bytes.Equal(body, layer), len(layer))
		}
		out, err := skopeoPull(t.Context(), u, "library/busybox:latest", t.TempDir())
		t.Logf("skopeo: %s", strings.TrimSpace(out))
		if err == nil || !strings.Contains(strings.ToLower(out), "digest") {
			t.Errorf("skopeo copy of a corrupt image: err %v, output %q; want a digest mismatch", err, out)
		}
	})

	t.Run("down", func(t *testing.T) {
		u.SetDown(true)
		for _, url := range []string{manifestURL, cdnURL, u.URL() + "/token"} {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
			if resp, err := noRedirects.Do(req); err == nil {
				resp.Body.Close()
				t.Errorf("GET %s while down: %s, want a dropped connection", url, resp.Status)
			}
		}
		u.SetDown(false)
		if resp, _ := do(t, "GET", manifestURL, tok); resp.StatusCode != 200 {
			t.Errorf("after the switch is off: %s, want 200", resp.Status)
		}
	})

	t.Run("delay", func(t *testing.T) {
		const delay = 150 * time.Millisecond
		u.SetDelay(delay)
		defer u.SetDelay(0)
		begin := time.Now()
		if resp, _ := do(t, "GET", manifestURL, tok); resp.StatusCode != 200 {
			t.Fatalf("delayed GET: %s", resp.Status)
		}
		if took := time.Since(begin); took < delay {
			t.Errorf("delayed GET took %v, want at least %v", took, delay)
		}
	})

	t.Run("throttle", func(t *testing.T) {
		const rate, n = 200_000, 100_000 // half a second's worth
		u.SetBlobThrottle(rate)
		defer u.SetBlobThrottle(0)
		begin := time.Now()
		resp, body := do(t, "GET", cdnURL, "", "Range: bytes=0-99999")
		took := time.Since(begin)
		if resp.StatusCode != 206 || !bytes.Equal(body, layer[:n]) {
			t.Fatalf("throttled range GET: %s, %d bytes, want 206 and the first %d bytes", resp.Status, len(body), n)
		}
		if want := 400 * time.Millisecond; took < want {
			t.Errorf("%d bytes at %d B/s took %v, want at least %v", n, rate, took, want)
		}
	})

	t.Run("down mid-body", func(t *testing.T) {
		u.SetBlobThrottle(100_000)
		defer u.SetBlobThrottle(0)
		defer u.SetDown(false)
		req, _ := http.NewRequestWithContext(t.Context(), "GET", cdnURL, nil)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatalf("first bytes: %v", err)
		}
		u.SetDown(true)
		rest, err := io.ReadAll(resp.Body)
		if err == nil || 1000+len(rest) >= len(layer) {
			t.Errorf("body after going down: %d more bytes, err %v; want it cut off", len(rest), err)
		}
	})

	t.Run("counts", func(t *testing.T) {
		u.Reset()
		do(t, "HEAD", manifestURL, tok)
		do(t, "GET", manifestURL, tok)
		do(t, "GET", manifestURL, "")
		want := upstream.Counts{Requests: 3, Unauthorized: 1, ManifestHeads: 1, ManifestGets: 1}
		if got := u.Counts(); got != want {
			t.Errorf("counts = %+v, want %+v", got, want)
		}
	})
}

func TestMissingRegistryBinary(t *testing.T) {
	t.Parallel()
	_, err := upstream.Start(t.Context(), upstream.Options{RegistryBinary: "no-such-registry"})
	if !errors.Is(err, upstream.ErrMissingTool) {
		t.Fatalf("Start without a registry binary: %v, want ErrMissingTool", err)
	}
}
