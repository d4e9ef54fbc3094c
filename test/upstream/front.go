package upstream

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nameRE is the repository name grammar of the distribution spec.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

func validName(name string) bool { return len(name) <= 255 && nameRE.MatchString(name) }

// route kinds of the front's /v2 API.
const (
	routePing     = "ping"
	routeManifest = "manifest"
	routeTags     = "tags"
	routeBlob     = "blob"
)

// route is a parsed /v2 path: its kind, repository name and reference
// (a tag or digest for manifests, a digest for blobs).
type route struct {
	kind, name, ref string
}

// parseRoute splits a /v2 path; names hold slashes, so it cuts at the last
// /manifests/ or /blobs/. Uploads and other write routes are not routes here.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, false
	}
	if rest == "" {
		return route{kind: routePing}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: routeTags, name: name}, validName(name)
	}
	for _, k := range []struct{ sep, kind string }{{"/manifests/", routeManifest}, {"/blobs/", routeBlob}} {
		if i := strings.LastIndex(rest, k.sep); i > 0 {
			name, ref := rest[:i], rest[i+len(k.sep):]
			ok := validName(name) && ref != "" && !strings.Contains(ref, "/")
			if k.kind == routeBlob {
				ok = ok && validDigest(ref)
			}
			return route{kind: k.kind, name: name, ref: ref}, ok
		}
	}
	return route{}, false
}

// validDigest accepts sha256 and sha512 digests in hex.
func validDigest(d string) bool {
	alg, hex, _ := strings.Cut(d, ":")
	var want int
	switch alg {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	}
	return want != 0 && len(hex) == want && strings.Trim(hex, "0123456789abcdef") == ""
}

// frontHandler serves Docker Hub's API: /token and the read-only /v2 routes.
func (u *Upstream) frontHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", u.serveToken)
	mux.HandleFunc("/v2/", u.serveV2)
	return u.faultMiddleware(mux)
}

// serveV2 checks the rate-limit switch and the token, then serves the route.
func (u *Upstream) serveV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "no such route on this read-only registry")
		return
	}
	if u.faults.tooMany.Load() {
		u.counts.add(func(c *Counts) *int { return &c.TooManyRequests })
		if s := u.faults.retry.Load(); s > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
		}
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", tooManyMessage)
		return
	}
	if !u.tokens.allows(r, rt.name, time.Now()) {
		u.challenge(w, rt.name)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	head := r.Method == http.MethodHead
	switch rt.kind {
	case routePing:
		u.counts.add(func(c *Counts) *int { return &c.Pings })
		writeJSON(w, http.StatusOK, struct{}{})
	case routeManifest:
		if !u.admitManifest(w, head, time.Now()) {
			return
		}
		u.counts.add(func(c *Counts) *int {
			if head {
				return &c.ManifestHeads
			}
			return &c.ManifestGets
		})
		if d, ok := u.movingDigest(rt.name, rt.ref); ok {
			u.proxyPath(w, r, "/v2/"+rt.name+"/manifests/"+d)
			return
		}
		u.proxy(w, r)
	case routeTags:
		u.counts.add(func(c *Counts) *int { return &c.TagLists })
		u.proxy(w, r)
	case routeBlob:
		if head {
			u.counts.add(func(c *Counts) *int { return &c.BlobHeads })
			u.proxy(w, r)
			return
		}
		u.counts.addBlobGet(rt.ref)
		u.redirectBlob(w, r, rt)
	}
}

// proxy forwards r (path, query and Accept) to the registry and copies the
// answer back: status, headers (Content-Type, Docker-Content-Digest,
// Content-Length...) and body.
func (u *Upstream) proxy(w http.ResponseWriter, r *http.Request) { u.proxyPath(w, r, r.URL.Path) }

// proxyPath is proxy with the registry's path given.
func (u *Upstream) proxyPath(w http.ResponseWriter, r *http.Request, path string) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.registryURL()+path, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, "UNSUPPORTED", err.Error())
		return
	}
	req.URL.RawQuery = r.URL.RawQuery
	req.Header["Accept"] = r.Header.Values("Accept")
	resp, err := u.client.Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, "UNKNOWN", "registry unreachable: "+err.Error())
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// redirectBlob answers a blob GET with 307 to a signed CDN URL, after
// checking that the blob exists (a missing one is 404 BLOB_UNKNOWN).
func (u *Upstream) redirectBlob(w http.ResponseWriter, r *http.Request, rt route) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodHead,
		u.registryURL()+"/v2/"+rt.name+"/blobs/"+rt.ref, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, "UNSUPPORTED", err.Error())
		return
	}
	resp, err := u.client.Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, "UNKNOWN", "registry unreachable: "+err.Error())
		return
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	case resp.StatusCode != http.StatusOK:
		writeError(w, resp.StatusCode, "UNKNOWN", "registry answered "+resp.Status)
		return
	}
	w.Header().Set("Location", u.signedBlobURL(rt.name, rt.ref, time.Now()))
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// hopByHop lists headers that belong to one connection and are not copied.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true,
}

// copyHeader copies src into dst, leaving out hop-by-hop headers.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if !hopByHop[k] {
			dst[k] = append([]string(nil), vs...)
		}
	}
}
