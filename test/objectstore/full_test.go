package objectstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/tmpfs"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestFullDataDir runs serve (embedded engine: SQLite, blobs, staging and uploads all in the
// data dir) with its data dir on a 64 MiB tmpfs that the test fills with a filler file:
//   - a pull of an uncached 24 MiB layer with 20 MiB free answers 503 UNAVAILABLE (with
//     Retry-After) before any byte is streamed;
//   - a pull that starts with room and loses it midway is cut (the client never gets a
//     complete-looking body), leaves no staging file and commits nothing; the next request
//     is 503 while the disk is full and 200 with the right bytes once it is freed;
//   - a PATCH of an upload on the full disk answers 503 UNAVAILABLE and counts nothing; the
//     same chunk resent after the space is freed completes the upload, and skopeo pushes;
//   - a sync that needs more than the free space fails with a clear error and creates no
//     repository version; once freed, it completes;
//   - the embedded database on the full disk: API writes answer 503 with DRF's body and
//     registry writes 503 UNAVAILABLE; freed, they succeed and the database is intact.
func TestFullDataDir(t *testing.T) {
	client.NeedTools(t, "skopeo")
	dir := tmpfs.Mount(t, 64)
	ctx := client.Context(t)
	hub := client.StartHub(t)
	big := pushLarge(t, hub, "library/big", 24)
	small := pushSmall(t, hub)
	srv := harness.Start(t, harness.Options{Binary: os.Getenv("PULPGO_TEST_BINARY"), DataDir: filepath.Join(dir, "data")})
	api := &client.API{Base: srv.URL, HTTP: client.NewHTTPClient()}
	api.CreatePullThrough(t, "hub", "docker-cache", hub.URL(), nil, nil)
	reg := &client.Registry{Base: srv.URL, HTTP: client.NewHTTPClient()}
	if _, _, _, err := reg.Manifest(ctx, "docker-cache/"+big.Name, big.Tag); err != nil {
		t.Fatal(err)
	}
	layer := big.Layers[0]
	blobURL := "/v2/docker-cache/" + big.Name + "/blobs/" + layer.Digest

	t.Run("too big to fit", func(t *testing.T) {
		filler := tmpfs.Fill(t, dir, 20<<20)
		defer filler.Remove(t)
		resp, err := reg.Request(ctx, http.MethodGet, blobURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, readAnswer(t, resp))
		wantNoFillLeft(t, srv, layer.Digest)
	})

	t.Run("runs out midway", func(t *testing.T) {
		hub.SetBlobThrottle(4 << 20)
		defer hub.SetBlobThrottle(0)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		resp, err := reg.Request(rctx, http.MethodGet, blobURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s = %d %s, want 200 (the disk has room)", blobURL, resp.StatusCode, b)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
			t.Fatal(err)
		}
		filler := tmpfs.Fill(t, dir, 0)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil || rctx.Err() != nil {
			t.Fatalf("the pull read %d more bytes and ended with %v (context %v), want a cut connection", n, err, rctx.Err())
		}
		t.Logf("cut after %d of %d bytes: %v", (1<<20)+n, layer.Size, err)
		wantNoFillLeft(t, srv, layer.Digest)

		resp, err = reg.Request(ctx, http.MethodGet, blobURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, readAnswer(t, resp))

		hub.SetBlobThrottle(0)
		filler.Remove(t)
		wantBlob(t, reg, blobURL, layer)
		// The blob is where wantNoFillLeft looked for it in vain.
		client.Poll(t, "the blob committed", func() (bool, string) {
			_, err := os.Stat(blobFile(srv, layer.Digest))
			return err == nil, fmt.Sprint(err)
		})
		home := harness.NewClientHome(t, srv)
		pulled := filepath.Join(home.Dir, "pulled")
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
			"docker://"+srv.Addr+"/docker-cache/"+big.Ref(), "dir:"+pulled).Must(t)
		wantDirBlobs(t, pulled, blobsOf(big))
	})

	t.Run("push", func(t *testing.T) {
		chunk := make([]byte, 4<<20)
		_, _ = rand.Read(chunk)
		digest := client.Digest(chunk)
		resp := push(t, srv, http.MethodPost, "/v2/team/pushed/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST upload = %d", resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		rng := http.Header{"Content-Range": {fmt.Sprintf("0-%d", len(chunk)-1)}, "Content-Type": {"application/octet-stream"}}

		filler := tmpfs.Fill(t, dir, 0)
		wantUnavailable(t, push(t, srv, http.MethodPatch, loc, rng, chunk))
		filler.Remove(t)

		resp = push(t, srv, http.MethodPatch, loc, rng, chunk)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH after the space came back = %d, want 202", resp.StatusCode)
		}
		loc = resp.Header.Get("Location")
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		if resp := push(t, srv, http.MethodPut, loc+sep+"digest="+digest, nil, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT upload = %d, want 201", resp.StatusCode)
		}
		got := push(t, srv, http.MethodGet, "/v2/team/pushed/blobs/"+digest, nil, nil)
		if got.StatusCode != http.StatusOK || client.Digest(got.body) != digest {
			t.Fatalf("GET pushed blob = %d, %d bytes of digest %s; want 200 with %s", got.StatusCode, len(got.body), client.Digest(got.body), digest)
		}

		home := harness.NewClientHome(t, srv)
		creds := harness.Username + ":" + harness.Password
		home.Run(t, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
			"docker://"+strings.TrimPrefix(hub.URL(), "http://")+"/"+small.Ref(), "docker://"+srv.Addr+"/team/busybox:v1").Must(t)
	})

	t.Run("sync", func(t *testing.T) {
		synced := pushLarge(t, hub, "library/synced", 24)
		remote, repo := newSync(t, api, hub.URL(), "synced", synced.Name)

		filler := tmpfs.Fill(t, dir, 16<<20)
		href := postSync(t, api, repo, remote)
		var task map[string]any
		client.Poll(t, "the sync task to end", func() (bool, string) {
			task = api.Get(t, href)
			s := client.Str(task, "state")
			return s == "completed" || s == "failed" || s == "canceled", s
		})
		if client.Str(task, "state") != "failed" {
			t.Fatalf("sync on a full disk: %v", task)
		}
		if desc := fmt.Sprint(task["error"]); !strings.Contains(desc, "bytes free") {
			t.Errorf("the failed sync's error does not say the disk is full: %s", desc)
		}
		if v := client.Str(api.Get(t, repo), "latest_version_href"); !strings.HasSuffix(v, "/versions/0/") {
			t.Errorf("a failed sync created version %s", v)
		}
		wantNoFillLeft(t, srv, synced.Layers[0].Digest)

		filler.Remove(t)
		task = api.WaitTask(t, postSync(t, api, repo, remote))
		if client.Str(task, "state") != "completed" {
			t.Fatalf("sync after the space came back: %v", task)
		}
		if v := client.Str(api.Get(t, repo), "latest_version_href"); !strings.HasSuffix(v, "/versions/1/") {
			t.Errorf("the sync after the space came back made %s, want version 1", v)
		}
	})

	// Last: it stops the server to check its database.
	t.Run("database full", func(t *testing.T) { wantDatabaseFullIs503(t, dir, srv, api) })
}

// wantDatabaseFullIs503 fills the data dir to the last byte and writes through the API until
// the embedded database fails (SQLite may still find room in pages it holds): that write must
// be a 503 with DRF's body, and a registry write a 503 UNAVAILABLE. Once the space is back the
// same writes succeed, and after the server stops the database passes SQLite's integrity check.
func wantDatabaseFullIs503(t *testing.T, dir string, srv *harness.Server, api *client.API) {
	t.Helper()
	filler := tmpfs.Fill(t, dir, 0)
	full := false
	for i := 0; i < 50 && !full; i++ {
		status, raw := api.Do(t, http.MethodPost, "/pulp/api/v3/repositories/container/container/", map[string]any{"name": fmt.Sprint("full-", i)})
		switch status {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil || body["detail"] == nil {
				t.Errorf("503 without DRF's detail: %s", raw)
			}
			full = true
		default:
			t.Fatalf("POST a repository on a full disk = %d %s, want 201 or 503", status, raw)
		}
	}
	if !full {
		t.Fatal("50 repositories created on a full disk")
	}
	wantUnavailable(t, push(t, srv, http.MethodPost, "/v2/team/full/blobs/uploads/", nil, nil))

	filler.Remove(t)
	post(t, api, "/pulp/api/v3/repositories/container/container/", map[string]any{"name": "after-full"}, http.StatusCreated)
	if a := push(t, srv, http.MethodPost, "/v2/team/full/blobs/uploads/", nil, nil); a.StatusCode != http.StatusAccepted {
		t.Fatalf("POST an upload after the space came back = %d %s", a.StatusCode, a.body)
	}
	srv.Stop()
	db, err := models.Open("", srv.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	var check string
	if err := db.Raw("PRAGMA integrity_check").Scan(&check).Error; err != nil || check != "ok" {
		t.Errorf("integrity_check of the database after the disk was full = %q, %v", check, err)
	}
}

// pushLarge pushes name:v1 to hub, an image of one layer of mib MiB.
func pushLarge(t *testing.T, hub *upstream.Upstream, name string, mib int) upstream.Image {
	t.Helper()
	im, err := hub.PushLarge(client.Context(t), name, "v1", mib, 1)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// pushSmall pushes library/busybox:latest to hub.
func pushSmall(t *testing.T, hub *upstream.Upstream) upstream.Image {
	t.Helper()
	im, err := hub.PushSmall(client.Context(t), "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// answer is a response read whole.
type answer struct {
	*http.Response
	body []byte
}

// path is the path the answer's request asked for (Registry.Request sends it as is, in the
// URL's Opaque).
func (a answer) path() string {
	if a.Request.URL.Opaque != "" {
		return a.Request.URL.Opaque
	}
	return a.Request.URL.Path
}

// readAnswer reads resp's body and closes it.
func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return answer{resp, b}
}

// push sends method path (a path, or an upload's Location) with the admin's credentials,
// hdr and body, and reads the answer.
func push(t *testing.T, srv *harness.Server, method, path string, hdr http.Header, body []byte) answer {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = srv.URL + path
	}
	req, err := http.NewRequestWithContext(client.Context(t), method, path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.SetBasicAuth(harness.Username, harness.Password)
	resp, err := client.NewHTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return readAnswer(t, resp)
}

// wantUnavailable checks a 503 in the registry's error format: code UNAVAILABLE, with a
// Retry-After.
func wantUnavailable(t *testing.T, a answer) {
	t.Helper()
	var eb client.ErrorBody
	if a.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(a.body, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "UNAVAILABLE" {
		t.Fatalf("%s %s = %d %s, want 503 UNAVAILABLE", a.Request.Method, a.path(), a.StatusCode, a.body)
	}
	if a.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: 503 without a Retry-After", a.Request.Method, a.path())
	}
}

// wantBlob GETs the blob at path and checks that it is b, whole.
func wantBlob(t *testing.T, reg *client.Registry, path string, b upstream.Blob) {
	t.Helper()
	resp, err := reg.Request(client.Context(t), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := readAnswer(t, resp)
	if a.StatusCode != http.StatusOK || client.Digest(a.body) != b.Digest {
		t.Fatalf("GET %s = %d, %d bytes; want 200 with the %d bytes of %s", path, a.StatusCode, len(a.body), b.Size, b.Digest)
	}
}

// wantNoFillLeft checks that no fill of the server left a staging file and that digest is not
// in its storage (nothing was committed).
func wantNoFillLeft(t *testing.T, srv *harness.Server, digest string) {
	t.Helper()
	client.Poll(t, "no staging file left", func() (bool, string) {
		var left []string
		_ = filepath.WalkDir(srv.DataDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".part") {
				left = append(left, p)
			}
			return nil
		})
		return len(left) == 0, fmt.Sprint(left)
	})
	if _, err := os.Stat(blobFile(srv, digest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("blob %s is in storage after a failed fill (%v)", digest, err)
	}
}

// blobFile is where the server keeps blob digest in its data dir's storage.
func blobFile(srv *harness.Server, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(srv.DataDir, "storage", "blobs", "sha256", hex[:2], hex)
}
