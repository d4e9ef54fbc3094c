package pullthrough

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/testenv"
	"github.com/pulpgo/pulpgo/test/upstream"
)

// dockerManifestAccept is what Docker's daemon sends as Accept on manifest requests: one
// header line per type its vendored distribution client registers
// (vendor/github.com/docker/distribution/manifests.go ManifestMediaTypes: schema2,
// manifestlist with the OCI index, ocischema; the order is a map's, so any).
var dockerManifestAccept = []string{
	upstream.MediaTypeDockerManifest, upstream.MediaTypeDockerManifestList,
	upstream.MediaTypeOCIIndex, upstream.MediaTypeOCIManifest,
}

// dockerDaemon replays what Docker's daemon (moby/moby, daemon/internal/distribution) sends to
// an entry of daemon.json's "registry-mirrors" when it pulls docker.io/<name>:<tag>, step by
// step, checking each answer as the daemon's code reads it:
//
//  1. GET /v2/: daemon/pkg/registry/auth.go PingV2Registry; a 401's WWW-Authenticate goes
//     into the challenge manager.
//  2. GET <realm>?scope=repository:<name>:pull&service=<service>, anonymous:
//     daemon/internal/distribution/registry.go newRepository (scope of the repository with
//     actions "pull", ClientID "docker" only sent with offline tokens, which it does not ask
//     for), vendor/github.com/docker/distribution/registry/client/auth/session.go
//     fetchTokenWithBasicAuth; the answer's "token" (or "access_token") is then sent as
//     Bearer on every request (tokenHandler.AuthorizeRequest), no 401 needed.
//  3. HEAD /v2/<name>/manifests/<tag> with the Accept list: pull_v2.go pullTag →
//     vendor/.../registry/client/repository.go tags.Get; descriptorFromResponse needs
//     Content-Type, Docker-Content-Digest and Content-Length.
//  4. GET /v2/<name>/manifests/<digest>: manifest.go manifestStore.Get → repository.go
//     manifests.Get; the manifest is unmarshalled by its Content-Type. For a manifest list,
//     pullManifestList then GETs the platform's child the same way.
//  5. GET /v2/<name>/blobs/<config>: pullSchema2Config → blobs.Get, digest verified.
//  6. GET /v2/<name>/blobs/<layer> per layer: pull_v2_unix.go layerDescriptor.open →
//     blobs.Open (transport.NewHTTPReadSeeker, redirects followed), Content-Length as size.
type dockerDaemon struct {
	t     testing.TB
	ctx   context.Context
	base  string // the mirror, http://host:port
	http  *http.Client
	token string
}

// dockerUserAgent is the shape of the daemon's User-Agent (dockerversion.DockerUserAgent).
const dockerUserAgent = "docker/28.0.0 go/go1.23.6 git-commit/af898ab kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/28.0.0 \\(linux\\))"

// send sends one request and returns the answer and its body (empty for HEAD).
func (d *dockerDaemon) send(method, rawURL string, accept []string) (*http.Response, []byte) {
	d.t.Helper()
	req, err := http.NewRequestWithContext(d.ctx, method, rawURL, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("User-Agent", dockerUserAgent)
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		d.t.Fatalf("%s %s: read: %v", method, rawURL, err)
	}
	if strings.HasPrefix(req.URL.Path, "/v2/") && resp.Request.URL.Host == req.URL.Host && resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		d.t.Errorf("%s %s: Docker-Distribution-API-Version %q", method, rawURL, resp.Header.Get("Docker-Distribution-API-Version"))
	}
	return resp, body
}

// login is steps 1 and 2.
func (d *dockerDaemon) login(name string) {
	d.t.Helper()
	resp, _ := d.send(http.MethodGet, d.base+"/v2/", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		d.t.Fatalf("GET /v2/: %d, want the 401 challenge the daemon reads", resp.StatusCode)
	}
	ch := client.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if ch.Realm == "" || ch.Service == "" {
		d.t.Fatalf("GET /v2/: challenge %q lacks realm or service", resp.Header.Get("WWW-Authenticate"))
	}
	q := url.Values{"service": {ch.Service}, "scope": {"repository:" + name + ":pull"}}
	resp, body := d.send(http.MethodGet, ch.Realm+"?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("token for %s: %d %s", name, resp.StatusCode, body)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token+tok.AccessToken == "" {
		d.t.Fatalf("token for %s: no token in %s", name, body)
	}
	d.token = tok.Token
	if d.token == "" {
		d.token = tok.AccessToken
	}
}

// manifest is step 3 or 4: the answer must be want's manifest with the headers the daemon
// reads; it returns the body (nil for HEAD).
func (d *dockerDaemon) manifest(method, name, ref string, want upstream.Image) []byte {
	d.t.Helper()
	path := "/v2/" + name + "/manifests/" + ref
	resp, body := d.send(method, d.base+path, dockerManifestAccept)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Docker-Content-Digest") != want.ManifestDigest || h.Get("Content-Type") != want.MediaType ||
		h.Get("Content-Length") != strconv.FormatInt(want.Size, 10) {
		d.t.Errorf("%s %s: Docker-Content-Digest %q, Content-Type %q, Content-Length %q; want %s, %s, %d", method, path,
			h.Get("Docker-Content-Digest"), h.Get("Content-Type"), h.Get("Content-Length"), want.ManifestDigest, want.MediaType, want.Size)
	}
	if method == http.MethodGet && client.Digest(body) != want.ManifestDigest {
		d.t.Errorf("GET %s: body hashes to %s", path, client.Digest(body))
	}
	return body
}

// blob is step 5 or 6.
func (d *dockerDaemon) blob(name string, b upstream.Blob) {
	d.t.Helper()
	path := "/v2/" + name + "/blobs/" + b.Digest
	resp, body := d.send(http.MethodGet, d.base+path, nil)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	sum := sha256.Sum256(body)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != b.Digest || resp.ContentLength != b.Size {
		d.t.Errorf("GET %s: %d bytes hashing to %s, Content-Length %d; want %d", path, len(body), got, resp.ContentLength, b.Size)
	}
}

// pull replays a whole `docker pull docker.io/<name>:<tag>` of img (an image, or an index
// whose linux/amd64 child is pulled).
func (d *dockerDaemon) pull(name string, img upstream.Image) {
	d.t.Helper()
	d.login(name)
	d.manifest(http.MethodHead, name, img.Tag, img)
	d.manifest(http.MethodGet, name, img.ManifestDigest, img)
	if len(img.Children) > 0 {
		child, ok := img.Child("linux/amd64")
		if !ok {
			d.t.Fatalf("%s has no linux/amd64 child", img.Ref())
		}
		d.manifest(http.MethodGet, name, child.ManifestDigest, child)
		img = child
	}
	d.blob(name, *img.Config)
	for _, l := range img.Layers {
		d.blob(name, l)
	}
}

// TestMirrorDockerDaemon: the requests Docker's daemon sends to a "registry-mirrors" entry
// (no ns, unprefixed names, anonymous token flow; see dockerDaemon) are answered as it needs,
// for an image and for a manifest list; a second daemon's pull is served from the cache, and
// the upstream served each blob once.
func TestMirrorDockerDaemon(t *testing.T) {
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub, img := startBusyboxHub(t)
		idx, err := hub.PushIndex(ctx, "library/alpine", "3")
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng, "", "--mirror", "docker-cache")
		e.createCache(t, "docker-cache", cacheBase, hub.URL(), nil, nil)

		hub.Reset()
		for i := range 2 {
			d := &dockerDaemon{t: t, ctx: ctx, base: e.srv.URL, http: client.NewHTTPClient()}
			t.Run(fmt.Sprintf("daemon %d", i+1), func(t *testing.T) {
				d.t = t
				d.pull("library/busybox", img)
				d.pull("library/alpine", idx)
			})
		}
		// A daemon logged in to Docker Hub sends those credentials to the mirror's token
		// endpoint (fetchTokenWithBasicAuth: account= and Basic). They are not pulpgo's: 401,
		// and the daemon falls back to Docker Hub (docs/mirror.md says so).
		d := &dockerDaemon{t: t, ctx: ctx, base: e.srv.URL, http: client.NewHTTPClient()}
		resp, _ := d.send(http.MethodGet, e.srv.URL+"/v2/", nil)
		ch := client.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
		q := url.Values{"account": {"hubuser"}, "service": {ch.Service}, "scope": {"repository:library/busybox:pull"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ch.Realm+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("hubuser", "docker hub password")
		resp, err = d.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token request with Docker Hub credentials: %d, want 401", resp.StatusCode)
		}

		checkOneFetch(t, hub, img)
		child, _ := idx.Child("linux/amd64")
		checkOneFetch(t, hub, child)
		e.checkOneChild(t, cacheBase+"/library/busybox")
		e.checkOneChild(t, cacheBase+"/library/alpine")
	})
}
