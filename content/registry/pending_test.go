package registry

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// pendingRows counts the pending blob rows of the repository pushed to as name.
func (p *pushEnv) pendingRows(name string) int64 {
	p.t.Helper()
	var n int64
	err := p.db.Model(&models.PendingBlob{}).
		Where("repository_id IN (?)", p.db.Model(&models.Repository{}).Select("id").Where("name = ?", name)).
		Count(&n).Error
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// getBlob GETs and HEADs the blob digest of name and checks that both answer status (and, for
// 200, the bytes want with their length and digest).
func (p *pushEnv) getBlob(what, name, digest string, header map[string]string, status int, want []byte) {
	p.t.Helper()
	resp, body := p.do(http.MethodHead, "/v2/"+name+"/blobs/"+digest, nil, header)
	if resp.StatusCode != status {
		p.t.Fatalf("%s: HEAD %d, want %d", what, resp.StatusCode, status)
	}
	if status == http.StatusOK && (resp.Header.Get("Content-Length") != strconv.Itoa(len(want)) || resp.Header.Get(headerContentDigest) != digest) {
		p.t.Errorf("%s: HEAD headers %v", what, resp.Header)
	}
	resp, body = p.do(http.MethodGet, "/v2/"+name+"/blobs/"+digest, nil, header)
	if resp.StatusCode != status {
		p.t.Fatalf("%s: GET %d, want %d: %s", what, resp.StatusCode, status, body)
	}
	if status == http.StatusOK && !bytes.Equal(body, want) {
		p.t.Errorf("%s: GET returned %d bytes, want %d", what, len(body), len(want))
	}
}

// TestPendingBlobs: a blob uploaded to a name is served there at once, before any manifest
// names it (the conformance suite reads the returned Location back), for sha256 and sha512,
// the empty blob and "{}" included, and only there; a private distribution keeps it private.
// A manifest push that records it ends its pending state; blob DELETE of a pending blob (sha512
// too) drops it; the sweeper drops pending rows older than the upload timeout; an orphan
// cleanup keeps pending blobs and their bytes.
func TestPendingBlobs(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, func(c *Config) { c.UploadTimeout = time.Hour })
		layer := randomBytes(t, 150_000) // more than one copy buffer
		empty, emptyJSON := []byte{}, []byte("{}")
		for _, b := range [][]byte{layer, empty, emptyJSON} {
			d := p.pushBlob("pend/app", b)
			p.getBlob("pending "+d, "pend/app", d, nil, http.StatusOK, b)
		}
		// Chunked, sha512.
		big := randomBytes(t, 70_000)
		sum := sha512.Sum512(big)
		d512 := "sha512:" + hex.EncodeToString(sum[:])
		resp, _ := p.do(http.MethodPost, "/v2/pend/app/blobs/uploads/", nil, nil)
		loc := resp.Header.Get("Location")
		resp, body := p.do(http.MethodPatch, loc, big[:30_000], nil)
		expect(t, "PATCH", resp, body, http.StatusAccepted, "")
		resp, body = p.do(http.MethodPut, loc+"?digest="+d512, big[30_000:], nil)
		expect(t, "PUT sha512", resp, body, http.StatusCreated, "")
		p.getBlob("pending sha512 at its Location", "pend/app", strings.TrimPrefix(resp.Header.Get("Location"), "/v2/pend/app/blobs/"), nil, http.StatusOK, big)
		if n := p.pendingRows("pend/app"); n != 4 {
			t.Fatalf("%d pending rows, want 4", n)
		}

		// Pending in pend/app only: another repository holding other content does not serve it,
		// nor does a name without a repository; hostile digests are refused as such.
		p.pushBlob("pend/other", []byte("other"))
		resp, body = p.do(http.MethodGet, "/v2/pend/other/blobs/"+oci.Digest(layer), nil, nil)
		expect(t, "pending elsewhere", resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
		resp, body = p.do(http.MethodGet, "/v2/pend/none/blobs/"+oci.Digest(layer), nil, nil)
		expect(t, "no repository", resp, body, http.StatusNotFound, "NAME_UNKNOWN")
		for _, d := range []string{"sha256:../../../../etc/passwd", "sha256:" + strings.Repeat("A", 64), "md5:abc"} {
			resp, body = p.do(http.MethodGet, "/v2/pend/app/blobs/"+d, nil, nil)
			if resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 {
				t.Errorf("GET %s: %d %s", d, resp.StatusCode, body)
			}
		}

		// Private: anonymous callers get nothing, the admin gets the bytes.
		p.getBlob("public pending, anonymous", "pend/app", oci.Digest(layer), map[string]string{"Authorization": ""}, http.StatusOK, layer)
		if err := p.db.Model(&models.Distribution{}).Where("base_path = ?", "pend/app").Update("private", true).Error; err != nil {
			t.Fatal(err)
		}
		p.getBlob("private pending, anonymous", "pend/app", oci.Digest(layer), map[string]string{"Authorization": ""}, http.StatusUnauthorized, nil)
		p.getBlob("private pending, admin", "pend/app", oci.Digest(layer), nil, http.StatusOK, layer)

		// An orphan cleanup of everything keeps the pending blobs and their bytes.
		res, err := models.DeleteOrphans(p.db, models.OrphanScope{Expiration: time.Now().Add(time.Hour)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Digests {
			if d == oci.Digest(layer) || d == d512 {
				t.Errorf("orphan cleanup removed pending blob %s", d)
			}
		}
		p.getBlob("pending after an orphan cleanup", "pend/app", oci.Digest(layer), nil, http.StatusOK, layer)

		// DELETE of a pending sha512 blob: 202, then it is unknown.
		resp, body = p.do(http.MethodDelete, "/v2/pend/app/blobs/"+d512, nil, nil)
		expect(t, "DELETE pending sha512", resp, body, http.StatusAccepted, "")
		p.getBlob("deleted pending", "pend/app", d512, nil, http.StatusNotFound, nil)
		resp, body = p.do(http.MethodDelete, "/v2/pend/app/blobs/"+d512, nil, nil)
		expect(t, "DELETE pending again", resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/pend/app/manifests/sha512:"+strings.Repeat("ab", 64), nil, nil)
		expect(t, "DELETE unknown sha512 manifest", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		resp, body = p.do(http.MethodDelete, "/v2/pend/app/blobs/latest", nil, nil)
		expect(t, "DELETE blob by a tag", resp, body, http.StatusBadRequest, "INVALID_REQUEST")

		// A manifest push that records a pending blob ends its pending state; it is served as
		// the version's content.
		cfgD := oci.Digest(emptyJSON)
		m := []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeOCIManifest + `","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` +
			cfgD + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + oci.Digest(layer) + `","size":` + strconv.Itoa(len(layer)) + `}]}`)
		resp, body = p.do(http.MethodPut, "/v2/pend/app/manifests/v1", m, map[string]string{"Content-Type": oci.MediaTypeOCIManifest})
		expect(t, "PUT manifest", resp, body, http.StatusCreated, "")
		if n := p.pendingRows("pend/app"); n != 1 { // the empty blob is left
			t.Errorf("%d pending rows after the manifest push, want 1", n)
		}
		p.getBlob("recorded layer", "pend/app", oci.Digest(layer), nil, http.StatusOK, layer)

		// The sweeper drops pending rows older than the upload timeout; the blob is then unknown.
		if _, err := p.reg.SweepUploads(context.Background()); err != nil || p.pendingRows("pend/app") != 1 {
			t.Fatalf("sweep of a fresh pending blob: %v, %d rows", err, p.pendingRows("pend/app"))
		}
		p.db.Model(&models.PendingBlob{}).Where("1 = 1").Update("pulp_created", time.Now().Add(-2*time.Hour))
		if _, err := p.reg.SweepUploads(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := p.pendingRows("pend/app"); n != 0 {
			t.Errorf("%d pending rows after sweeping old ones", n)
		}
		p.getBlob("swept pending", "pend/app", oci.Digest(empty), nil, http.StatusNotFound, nil)
		p.getBlob("recorded layer after the sweep", "pend/app", oci.Digest(layer), nil, http.StatusOK, layer)
	})
}

// TestMountPendingBlob mounts a blob that its source repository holds pending: the target
// serves it at once, as pending.
func TestMountPendingBlob(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		b := randomBytes(t, 3000)
		d := p.pushBlob("msrc", b)
		resp, body := p.do(http.MethodPost, "/v2/mdst/blobs/uploads/?mount="+d+"&from=msrc", nil, nil)
		expect(t, "mount a pending blob", resp, body, http.StatusCreated, "")
		p.getBlob("mounted pending", "mdst", d, nil, http.StatusOK, b)
		if n := p.pendingRows("mdst"); n != 1 {
			t.Errorf("%d pending rows in the target", n)
		}
		// A private source refuses anonymous mounts (the client uploads instead).
		p.db.Model(&models.Distribution{}).Where("base_path = ?", "msrc").Update("private", true)
		anon := basicAuth("", "")
		resp, body = p.do(http.MethodPost, "/v2/mdst2/blobs/uploads/?mount="+d+"&from=msrc", nil, anon)
		if resp.StatusCode == http.StatusCreated {
			t.Errorf("anonymous mount from a private source: %d %s", resp.StatusCode, body)
		}
	})
}

// TestReferrersOfUnknownName: a name nothing is distributed at has no referrers (an empty
// index, as the conformance suite expects), and asking creates nothing, neither for a plain
// name nor for a name below a pull-through distribution.
func TestReferrersOfUnknownName(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		pt := models.Distribution{ID: models.NewID(), PulpType: models.KindPullThroughDist.PulpType, Name: "cache",
			BasePath: "cache", PulpLabels: models.Labels{}, PulpCreated: models.Now(), PulpLastUpdated: models.Now()}
		if err := p.db.Create(&pt).Error; err != nil {
			t.Fatal(err)
		}
		d := oci.Digest([]byte("subject"))
		for _, name := range []string{"nothing/here", "cache/library/alpine", "cache"} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, body := p.do(method, "/v2/"+name+"/referrers/"+d, nil, nil)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != oci.MediaTypeOCIIndex {
					t.Fatalf("%s %s: %d %v %s", method, name, resp.StatusCode, resp.Header, body)
				}
				if method == http.MethodGet {
					var idx referrersIndex
					if err := json.Unmarshal(body, &idx); err != nil || idx.Manifests == nil || len(idx.Manifests) != 0 || idx.MediaType != oci.MediaTypeOCIIndex {
						t.Errorf("%s: %s", name, body)
					}
				}
			}
		}
		resp, body := p.do(http.MethodGet, "/v2/nothing/here/referrers/sha256:nothex", nil, nil)
		expect(t, "bad digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		var n int64
		p.db.Model(&models.Distribution{}).Count(&n)
		var repos int64
		p.db.Model(&models.Repository{}).Count(&repos)
		if n != 1 || repos != 0 {
			t.Errorf("referrers requests created %d distributions, %d repositories", n-1, repos)
		}
	})
}

// TestPendingBlobsNotThroughPinned: a distribution pinned to a version of the repository
// (public, while the repository's own is private) does not serve what is being pushed to the
// repository (review finding 8).
func TestPendingBlobsNotThroughPinned(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		p := newPushEnv(t, e, nil)
		p.pushImage("own/app", "v1")
		if err := p.db.Model(&models.Distribution{}).Where("base_path = ?", "own/app").Update("private", true).Error; err != nil {
			t.Fatal(err)
		}
		var repo models.Repository
		if err := p.db.Take(&repo, "name = ?", "own/app").Error; err != nil {
			t.Fatal(err)
		}
		var v models.RepositoryVersion
		if err := p.db.Take(&v, "repository_id = ? AND number = ?", repo.ID, repo.LatestNumber).Error; err != nil {
			t.Fatal(err)
		}
		now := models.Now()
		pinned := models.Distribution{ID: models.NewID(), PulpType: models.KindContainerDistribution.PulpType, PulpCreated: now,
			PulpLastUpdated: now, Name: "release/app", BasePath: "release/app", RepositoryVersionID: &v.ID, PulpLabels: models.Labels{}}
		if err := p.db.Create(&pinned).Error; err != nil {
			t.Fatal(err)
		}
		secret := randomBytes(t, 4000)
		d := p.pushBlob("own/app", secret)
		anon := map[string]string{"Authorization": ""}
		p.getBlob("pending, through the pinned public distribution", "release/app", d, anon, http.StatusNotFound, nil)
		p.getBlob("pending, through the repository's own distribution", "own/app", d, nil, http.StatusOK, secret)
	})
}
