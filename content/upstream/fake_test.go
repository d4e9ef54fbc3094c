package upstream

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// authMode is how the fake registry wants to be authenticated.
type authMode int

const (
	authNone authMode = iota
	authBearer
	authBasic
)

const fakeService = "fake-registry"

// fakeManifest is a manifest stored in the fake registry.
type fakeManifest struct {
	mediaType string
	body      []byte
}

// fakeRegistry is a distribution-style registry with an optional token realm on its own
// server, recording what it was asked.
type fakeRegistry struct {
	t    *testing.T
	mode authMode
	// user and pass are the credentials the realm (bearer) or the registry (basic) accepts.
	user, pass string
	// realmRequiresAuth makes the realm refuse anonymous token requests.
	realmRequiresAuth bool
	// tokenTTL is the expires_in of issued tokens; 0 omits it.
	tokenTTL int
	// accessToken answers with "access_token" instead of "token".
	accessToken bool
	// omitDigest leaves out Docker-Content-Digest on manifests.
	omitDigest bool
	// blobRedirect, when set, answers blob GETs with a 307 to blobRedirect+"/blob/<digest>".
	blobRedirect string
	// handle, when set, runs before the registry logic; returning true means it answered.
	handle func(w http.ResponseWriter, r *http.Request) bool
	// realmGate, when set, holds every token request until it is closed.
	realmGate chan struct{}
	// onUnauthorized runs after each 401 with the number of 401s so far.
	onUnauthorized func(n int)
	// tls serves the registry over TLS with this config (a fresh one when nil), and the realm
	// over TLS too unless plainRealm is set.
	tls        bool
	tlsCfg     *tls.Config
	plainRealm bool

	reg   *httptest.Server
	realm *httptest.Server

	mu           sync.Mutex
	manifests    map[string]fakeManifest // "<repo>:<tag>" and "<repo>@<digest>"
	blobs        map[string][]byte       // "<repo>@<digest>"
	grants       map[string]string       // token → scope
	realmScopes  []string                // scope of each token request
	realmAuth    []string                // Authorization of each token request
	requests     []*http.Request         // every registry request (headers cloned)
	unauthorized int
}

// newFake starts a fake registry (and, for bearer auth, its realm) and stops them at cleanup.
func newFake(t *testing.T, mode authMode, opts ...func(*fakeRegistry)) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{
		t: t, mode: mode,
		manifests: map[string]fakeManifest{},
		blobs:     map[string][]byte{},
		grants:    map[string]string{},
	}
	for _, o := range opts {
		o(f)
	}
	if f.tls && !f.plainRealm {
		f.realm = httptest.NewTLSServer(http.HandlerFunc(f.serveRealm))
	} else {
		f.realm = httptest.NewServer(http.HandlerFunc(f.serveRealm))
	}
	t.Cleanup(f.realm.Close)
	f.reg = httptest.NewUnstartedServer(http.HandlerFunc(f.serveRegistry))
	if f.tls {
		// Refused handshakes are what some tests want; keep them out of the output.
		f.reg.Config.ErrorLog = log.New(io.Discard, "", 0)
		f.reg.TLS = f.tlsCfg
		f.reg.StartTLS()
	} else {
		f.reg.Start()
	}
	t.Cleanup(f.reg.Close)
	return f
}

// digestOf is the sha256 digest of b.
func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// addManifest stores body under repo:tag and repo@digest and returns the digest.
func (f *fakeRegistry) addManifest(repo, tag, mediaType string, body []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digestOf(body)
	m := fakeManifest{mediaType: mediaType, body: body}
	f.manifests[repo+":"+tag] = m
	f.manifests[repo+"@"+d] = m
	return d
}

// addBlob stores b in repo and returns its digest.
func (f *fakeRegistry) addBlob(repo string, b []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digestOf(b)
	f.blobs[repo+"@"+d] = b
	return d
}

// revokeAll forgets every issued token.
func (f *fakeRegistry) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants = map[string]string{}
}

// stats returns the number of registry requests, 401 answers and token requests.
func (f *fakeRegistry) stats() (requests, unauthorized, tokens int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests), f.unauthorized, len(f.realmScopes)
}

// scopes returns the scope of each token request so far.
func (f *fakeRegistry) scopes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.realmScopes...)
}

// seen returns the registry requests so far.
func (f *fakeRegistry) seen() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

func (f *fakeRegistry) serveRealm(w http.ResponseWriter, r *http.Request) {
	if f.realmGate != nil {
		select {
		case <-f.realmGate:
		case <-r.Context().Done():
			return
		}
	}
	q := r.URL.Query()
	scope := q.Get("scope")
	f.mu.Lock()
	f.realmScopes = append(f.realmScopes, scope)
	f.realmAuth = append(f.realmAuth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if q.Get("service") != fakeService || len(q["scope"]) != 1 || strings.Count(scope, ":") != 2 {
		writeRegError(w, http.StatusBadRequest, "BAD_REQUEST", "bad service or scope")
		return
	}
	u, p, ok := r.BasicAuth()
	if ok && (u != f.user || p != f.pass) || !ok && f.realmRequiresAuth {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"details":"incorrect username or password"}`)
		return
	}
	f.mu.Lock()
	tok := fmt.Sprintf("tok-%d", len(f.realmScopes))
	f.grants[tok] = scope
	f.mu.Unlock()
	resp := map[string]any{}
	if f.accessToken {
		resp["access_token"] = tok
	} else {
		resp["token"] = tok
	}
	if f.tokenTTL > 0 {
		resp["expires_in"] = f.tokenTTL
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// parseV2 splits /v2/<repo>/<kind>/<ref>.
func parseV2(p string) (repo, kind, ref string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", "", false
	}
	for _, k := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.LastIndex(rest, k); i > 0 {
			return rest[:i], strings.Trim(k, "/"), rest[i+len(k):], true
		}
	}
	return "", "", "", false
}

func (f *fakeRegistry) serveRegistry(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	rc := r.Clone(r.Context())
	f.requests = append(f.requests, rc)
	f.mu.Unlock()
	if f.handle != nil && f.handle(w, r) {
		return
	}
	repo, kind, ref, ok := parseV2(r.URL.Path)
	if !ok {
		writeRegError(w, http.StatusNotFound, "NOT_FOUND", "no route")
		return
	}
	if !f.authorized(w, r, repo) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch kind {
	case "manifests":
		sep := ":"
		if strings.HasPrefix(ref, "sha256:") {
			sep = "@"
		}
		m, ok := f.manifests[repo+sep+ref]
		if !ok {
			writeRegError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Content-Length", fmt.Sprint(len(m.body)))
		if !f.omitDigest {
			w.Header().Set("Docker-Content-Digest", digestOf(m.body))
		}
		if r.Method == http.MethodGet {
			w.Write(m.body)
		}
	case "blobs":
		b, ok := f.blobs[repo+"@"+ref]
		if !ok {
			writeRegError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		if f.blobRedirect != "" && r.Method == http.MethodGet {
			http.Redirect(w, r, f.blobRedirect+"/blob/"+ref, http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Docker-Content-Digest", ref)
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	case "tags":
		var tags []string
		for k := range f.manifests {
			if t, ok := strings.CutPrefix(k, repo+":"); ok {
				tags = append(tags, t)
			}
		}
		if tags == nil {
			writeRegError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": tags})
	}
}

// authorized checks the request's credentials and answers 401 with a challenge if they do not
// do.
func (f *fakeRegistry) authorized(w http.ResponseWriter, r *http.Request, repo string) bool {
	auth := r.Header.Get("Authorization")
	switch f.mode {
	case authNone:
		return true
	case authBearer:
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
			f.mu.Lock()
			scope, ok := f.grants[tok]
			f.mu.Unlock()
			if ok && scope == pullScope(repo) {
				return true
			}
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="%s",scope="%s"`,
			f.realm.URL, fakeService, pullScope(repo)))
	case authBasic:
		if u, p, ok := r.BasicAuth(); ok && u == f.user && p == f.pass {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
	}
	f.mu.Lock()
	f.unauthorized++
	n := f.unauthorized
	f.mu.Unlock()
	writeRegError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	if f.onUnauthorized != nil {
		f.onUnauthorized(n)
	}
	return false
}

// writeRegError writes a distribution-spec error body.
func writeRegError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// newClient builds a Client for f's registry; edit adjusts the config first.
func newClient(t *testing.T, url string, edit ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: url, TLSValidation: true, Timeout: 10 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// ociManifest is a small manifest body for tests.
func ociManifest(n int) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":%d},"layers":[]}`, n, n))
}

const ociManifestType = "application/vnd.oci.image.manifest.v1+json"
