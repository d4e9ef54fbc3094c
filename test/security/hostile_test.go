package security

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/client"
)

// hostile is a registry upstream of this package, on 127.0.0.1: just enough of /v2/ (GET /v2/,
// GET and HEAD of manifests by tag or digest and of blobs, a Bearer token endpoint) to be
// pulled through, with switches to make it lie. It serves exactly what it was given: a
// manifest is answered with the bytes, media type and Docker-Content-Digest it was added with,
// true or not.
type hostile struct {
	t   testing.TB
	url string
	srv *http.Server

	mu    sync.Mutex
	repos map[string]*hostileRepo

	// throttle, when > 0, is the rate in bytes per second at which blobs are sent.
	throttle atomic.Int64
	// manifestDelay delays every manifest answer (nanoseconds).
	manifestDelay atomic.Int64
	// user and pass, when user is set, make every /v2/ request need a Bearer token from
	// /token; the names in secret answer only to a token obtained with these credentials (404
	// to any other, as a registry hides a private repository).
	user, pass string
	secret     map[string]bool

	requests atomic.Int64
	logMu    sync.Mutex
	log      []string
}

// hostileRepo is what the hostile upstream has under one name.
type hostileRepo struct {
	manifests map[string]hostileManifest // by tag and by digest
	blobs     map[string][]byte          // by digest
}

// hostileManifest is one manifest answer.
type hostileManifest struct {
	body      []byte
	mediaType string
	digest    string // the Docker-Content-Digest header sent
}

// startHostile starts a hostile upstream, closed when t ends.
func startHostile(t testing.TB) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostile upstream: %v", err)
	}
	h := &hostile{t: t, url: "http://" + ln.Addr().String(), repos: map[string]*hostileRepo{}, secret: map[string]bool{}}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("hostile upstream stopped: %v", err)
		}
	}()
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// requireToken makes every request need a Bearer token; names in secret need one obtained
// with user:pass.
func (h *hostile) requireToken(user, pass string, secret ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.user, h.pass = user, pass
	for _, s := range secret {
		h.secret[s] = true
	}
}

func (h *hostile) repo(name string) *hostileRepo {
	r, ok := h.repos[name]
	if !ok {
		r = &hostileRepo{manifests: map[string]hostileManifest{}, blobs: map[string][]byte{}}
		h.repos[name] = r
	}
	return r
}

// addManifest serves body under name at each ref (tags or digests), with the media type and
// the Docker-Content-Digest header claimed (which need not be true).
func (h *hostile) addManifest(name string, body []byte, mediaType, claimed string, refs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ref := range refs {
		h.repo(name).manifests[ref] = hostileManifest{body: body, mediaType: mediaType, digest: claimed}
	}
}

// addBlob serves b under name at its digest, and returns the digest.
func (h *hostile) addBlob(name string, b []byte) string {
	d := client.Digest(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repo(name).blobs[d] = b
	return d
}

// hostileImage is an image the hostile upstream serves.
type hostileImage struct {
	Name, Tag string
	// Digest is the manifest's digest, Manifest its bytes.
	Digest   string
	Manifest []byte
	// Config and Layers are the blobs' digests.
	Config string
	Layers []string
	// LayerBytes are the layers' bytes, in order.
	LayerBytes [][]byte
}

// OCI media types of the images the hostile upstream builds.
const (
	mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// addImage serves an OCI image name:tag (and by digest) with a small config and the layers
// given, with annotations in its manifest (nil for none).
func (h *hostile) addImage(name, tag string, annotations map[string]string, layers ...[]byte) hostileImage {
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	img := hostileImage{Name: name, Tag: tag, LayerBytes: layers}
	var diffIDs []string
	var ls []desc
	for _, l := range layers {
		d := h.addBlob(name, l)
		img.Layers = append(img.Layers, d)
		diffIDs = append(diffIDs, d)
		ls = append(ls, desc{mediaTypeOCILayer, d, len(l)})
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}, "Labels": map[string]string{"name": name + ":" + tag}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	img.Config = h.addBlob(name, config)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeOCIManifest,
		"config":        desc{mediaTypeOCIConfig, img.Config, len(config)},
		"layers":        ls,
	}
	if annotations != nil {
		m["annotations"] = annotations
	}
	img.Manifest, _ = json.Marshal(m)
	img.Digest = client.Digest(img.Manifest)
	h.addManifest(name, img.Manifest, mediaTypeOCIManifest, img.Digest, tag, img.Digest)
	return img
}

// randomBytes returns n random bytes: a layer no other image shares.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// count returns how many /v2/ and /token requests the upstream received.
func (h *hostile) count() int64 { return h.requests.Load() }

// seen returns the requests received ("METHOD path"), in order.
func (h *hostile) seen() []string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return append([]string(nil), h.log...)
}

// seenPath reports whether a request for a path containing part was received.
func (h *hostile) seenPath(part string) bool {
	for _, s := range h.seen() {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}

func (h *hostile) serve(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	h.logMu.Lock()
	h.log = append(h.log, r.Method+" "+r.URL.Path)
	h.logMu.Unlock()
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")

	if r.URL.Path == "/token" {
		h.serveToken(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v2/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		h.fail(w, http.StatusNotFound, "UNSUPPORTED", "not here")
		return
	}
	h.mu.Lock()
	user := h.user
	h.mu.Unlock()
	good := false
	if user != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="hostile"`, h.url))
			h.fail(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		good = tok == "good"
	}
	if r.URL.Path == "/v2/" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	kind, name, ref := "", "", ""
	for _, k := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
			kind, name, ref = k, rest[:i], rest[i+len(k)+2:]
			break
		}
	}
	h.mu.Lock()
	repo := h.repos[name]
	hidden := h.secret[name] && !good
	var m hostileManifest
	var mok bool
	var blob []byte
	if repo != nil && !hidden {
		m, mok = repo.manifests[ref]
		blob = repo.blobs[ref]
	}
	h.mu.Unlock()
	switch {
	case kind == "":
		h.fail(w, http.StatusNotFound, "NAME_UNKNOWN", "unknown path")
	case repo == nil || hidden:
		h.fail(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
	case kind == "manifests" && !mok:
		h.fail(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
	case kind == "manifests":
		if d := time.Duration(h.manifestDelay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", m.digest)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(m.body)
		}
	case blob == nil:
		h.fail(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", ref)
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		if r.Method == http.MethodGet {
			h.sendSlowly(r.Context(), w, blob)
		}
	}
}

// sendSlowly writes b at the throttle's rate (read again at every chunk), or at once.
func (h *hostile) sendSlowly(ctx context.Context, w http.ResponseWriter, b []byte) {
	const chunk = 16 << 10
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
		if rate := h.throttle.Load(); rate > 0 {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			select {
			case <-time.After(time.Duration(int64(n) * int64(time.Second) / rate)):
			case <-ctx.Done():
				return
			}
		}
	}
}

// serveToken hands out "good" for the right Basic credentials and "anon" otherwise.
func (h *hostile) serveToken(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	wantUser, wantPass := h.user, h.pass
	h.mu.Unlock()
	tok := "anon"
	if u, p, ok := r.BasicAuth(); ok {
		if u != wantUser || p != wantPass {
			h.fail(w, http.StatusUnauthorized, "UNAUTHORIZED", "wrong credentials")
			return
		}
		tok = "good"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
}

func (h *hostile) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// ---------------------------------------------------------------------------------------------
// Signed Docker schema 1.

// schema1 returns a signed schema 1 manifest for name:tag in libtrust's pretty format and the
// digest of its JWS payload, which is its digest for Distribution and every client: the bytes
// without the signature block. The protected header's formatLength and formatTail say how
// to rebuild the payload: the body's first formatLength bytes followed by formatTail.
func schema1(name, tag, layer string) (body []byte, payloadDigest string) {
	v1, _ := json.Marshal(map[string]any{"id": strings.Repeat("ab", 32), "architecture": "amd64", "os": "linux"})
	payload := fmt.Sprintf("{\n   \"schemaVersion\": 1,\n   \"name\": %q,\n   \"tag\": %q,\n   \"architecture\": \"amd64\",\n"+
		"   \"fsLayers\": [\n      {\n         \"blobSum\": %q\n      }\n   ],\n"+
		"   \"history\": [\n      {\n         \"v1Compatibility\": %q\n      }\n   ]\n}", name, tag, layer, v1)
	const tail = "\n}"
	formatLength := len(payload) - len(tail)
	b64 := base64.RawURLEncoding.EncodeToString
	protected, _ := json.Marshal(map[string]any{
		"formatLength": formatLength,
		"formatTail":   b64([]byte(tail)),
		"time":         "2026-01-01T00:00:00Z",
	})
	sigs := ",\n   \"signatures\": [\n      {\n         \"header\": {\n            \"jwk\": {\n" +
		"               \"crv\": \"P-256\",\n               \"kid\": \"TEST:TEST\",\n               \"kty\": \"EC\",\n" +
		"               \"x\": \"" + b64(make([]byte, 32)) + "\",\n               \"y\": \"" + b64(make([]byte, 32)) + "\"\n" +
		"            },\n            \"alg\": \"ES256\"\n         },\n" +
		"         \"signature\": \"" + b64(make([]byte, 64)) + "\",\n" +
		"         \"protected\": \"" + b64(protected) + "\"\n      }\n   ]"
	body = []byte(payload[:formatLength] + sigs + tail)
	return body, client.Digest([]byte(payload))
}
