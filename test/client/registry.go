package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// ManifestAccept is the Accept header of Registry.Manifest when Registry.Accept is empty:
// every image and index type, as podman sends.
var ManifestAccept = strings.Join([]string{
	upstream.MediaTypeOCIIndex, upstream.MediaTypeDockerManifestList,
	upstream.MediaTypeOCIManifest, upstream.MediaTypeDockerManifest,
}, ", ")

// Registry talks to the registry API (/v2/) the way a container client does, checking
// every digest it is given and throwing the blob bytes away.
type Registry struct {
	// Base is the server's URL, without a trailing slash.
	Base string
	// HTTP sends the requests (NewHTTPClient, usually).
	HTTP *http.Client
	// User and Pass are sent as Basic credentials when User is not empty; anonymous
	// otherwise.
	User, Pass string
	// Accept is the Accept header of manifest requests; empty means ManifestAccept.
	Accept string
	// NoToken turns off the token flow: a 401 with a Bearer challenge is returned as it is,
	// instead of being answered with a token from its realm as container clients do.
	NoToken bool

	mu     sync.Mutex
	tokens map[string]string // by the scope of the challenge
}

// RegistryError is an answer other than 200 to Manifest or Blob.
type RegistryError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// ErrorBody is the distribution spec's error body ({"errors":[...]}).
type ErrorBody struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	} `json:"errors"`
}

// ManifestAccept returns the Accept header of r's manifest requests.
func (r *Registry) ManifestAccept() string {
	if r.Accept == "" {
		return ManifestAccept
	}
	return r.Accept
}

// Request sends method path with the headers (and r's credentials); the path, query
// included, goes on the request line byte for byte: no escaping, no cleaning. A 401 with a
// Bearer challenge is answered as container clients answer it (unless NoToken): a token from
// the challenge's realm for its service and scope (asked with r's credentials), and the
// request again with it.
func (r *Registry) Request(ctx context.Context, method, path string, hdr http.Header) (*http.Response, error) {
	send := func(bearer string) (*http.Response, error) {
		u, err := url.Parse(r.Base)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, r.Base+"/", nil)
		if err != nil {
			return nil, err
		}
		u.Opaque = path // the request line carries the path byte for byte: no escaping, no cleaning
		req.URL = u
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		switch {
		case bearer != "":
			req.Header.Set("Authorization", "Bearer "+bearer)
		case r.User != "":
			req.SetBasicAuth(r.User, r.Pass)
		}
		return r.HTTP.Do(req)
	}
	r.mu.Lock()
	cached := r.tokens[path]
	r.mu.Unlock()
	resp, err := send(cached)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || r.NoToken {
		return resp, err
	}
	ch := ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if ch.Realm == "" {
		return resp, nil
	}
	tok, err := r.Token(ctx, ch)
	var refused *RegistryError
	if errors.As(err, &refused) && refused.Status == http.StatusUnauthorized {
		// Credentials the token endpoint refuses: the client is left with the registry's 401.
		return resp, nil
	}
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.tokens == nil {
		r.tokens = map[string]string{}
	}
	r.tokens[path] = tok
	r.mu.Unlock()
	return send(tok)
}

// Challenge is a Bearer challenge: the token realm, the service and the scopes it names.
type Challenge struct {
	Realm, Service, Error string
	Scopes                []string
}

// ParseChallenge reads a `Bearer realm="...",service="...",scope="..."` header; a header of
// another scheme gives an empty Challenge.
func ParseChallenge(h string) Challenge {
	var c Challenge
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return c
	}
	for _, m := range challengeParam.FindAllStringSubmatch(rest, -1) {
		switch m[1] {
		case "realm":
			c.Realm = m[2]
		case "service":
			c.Service = m[2]
		case "scope":
			c.Scopes = append(c.Scopes, m[2])
		case "error":
			c.Error = m[2]
		}
	}
	return c
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// Token asks the challenge's realm for a token (with r's credentials as Basic when User is
// set) and returns it; an answer other than 200 is a *RegistryError.
func (r *Registry) Token(ctx context.Context, ch Challenge) (string, error) {
	q := url.Values{"service": {ch.Service}}
	if len(ch.Scopes) > 0 {
		q["scope"] = ch.Scopes
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ch.Realm+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Pass)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("GET %s: read: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &RegistryError{"GET", req.URL.String(), resp.StatusCode, string(body)}
	}
	var t struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.Token == "" {
		return "", fmt.Errorf("GET %s: no token in %s", req.URL, body)
	}
	return t.Token, nil
}

// Manifest GETs /v2/<name>/manifests/<ref>, checks that Docker-Content-Digest is the sha256
// of the body (and equals ref when ref is a digest), and returns the body, its Content-Type
// and its digest. An answer other than 200 is a *RegistryError.
func (r *Registry) Manifest(ctx context.Context, name, ref string) (body []byte, mediaType, digest string, err error) {
	path := "/v2/" + name + "/manifests/" + ref
	resp, err := r.Request(ctx, http.MethodGet, path, http.Header{"Accept": {r.ManifestAccept()}})
	if err != nil {
		return nil, "", "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", "", fmt.Errorf("GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", "", &RegistryError{"GET", path, resp.StatusCode, string(body)}
	}
	digest = Digest(body)
	if h := resp.Header.Get("Docker-Content-Digest"); h != digest {
		return nil, "", "", fmt.Errorf("GET %s: Docker-Content-Digest %q, body hashes to %s", path, h, digest)
	}
	if strings.HasPrefix(ref, "sha256:") && ref != digest {
		return nil, "", "", fmt.Errorf("GET %s: body hashes to %s", path, digest)
	}
	return body, resp.Header.Get("Content-Type"), digest, nil
}

// Blob GETs /v2/<name>/blobs/<digest> (following redirects), reads it all and checks its
// sha256 and Content-Length; it returns the number of bytes read. An answer other than 200
// is a *RegistryError.
func (r *Registry) Blob(ctx context.Context, name, digest string) (int64, error) {
	path := "/v2/" + name + "/blobs/" + digest
	resp, err := r.Request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, &RegistryError{"GET", path, resp.StatusCode, string(b)}
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: body cut after %d bytes: %w", path, n, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("GET %s: %d bytes hash to %s", path, n, got)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return n, fmt.Errorf("GET %s: Content-Length %d, read %d", path, resp.ContentLength, n)
	}
	return n, nil
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Refs are the digests a manifest refers to: the manifests an index lists, or an image's
// config and layers.
type Refs struct {
	Manifests []string
	Config    string
	Layers    []string
}

// ParseRefs reads the references of a manifest or index.
func ParseRefs(raw []byte) (Refs, error) {
	var m struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Refs{}, fmt.Errorf("parse manifest: %w", err)
	}
	r := Refs{Config: m.Config.Digest}
	for _, c := range m.Manifests {
		r.Manifests = append(r.Manifests, c.Digest)
	}
	for _, l := range m.Layers {
		r.Layers = append(r.Layers, l.Digest)
	}
	return r, nil
}
