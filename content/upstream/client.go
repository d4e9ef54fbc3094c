package upstream

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// MaxManifestSize is the largest manifest, or tag list page, the client reads (4 MiB).
const MaxManifestSize = 4 << 20

const (
	defaultTimeout     = 30 * time.Second
	defaultIdleTimeout = 60 * time.Second
	userAgent          = "pulpgo"
)

// defaultAccept is the Accept header of manifest requests that give no list: Docker schema 2
// manifests and manifest lists, OCI manifests and indexes.
const defaultAccept = "application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.oci.image.index.v1+json"

// Config is what a Pulp remote says about its upstream registry.
type Config struct {
	// URL is the registry's base URL, e.g. https://registry-1.docker.io: scheme, host, optional
	// port and optional path prefix (requests go to <URL>/v2/...). It must not hold credentials.
	URL string
	// Username and Password, when Username is set, are sent as Basic credentials to the token
	// realm of a Bearer challenge, or to the registry itself when it asks for Basic auth.
	Username, Password string
	// TLSValidation turns on certificate and host name checks. The zero value turns them off,
	// so copy the remote's tls_validation (default true) into it.
	TLSValidation bool
	// CACert is PEM; its certificates are trusted in addition to the system roots.
	CACert string
	// ClientCert and ClientKey are a PEM pair for mutual TLS; both or neither.
	ClientCert, ClientKey string
	// ProxyURL is an http, https or socks5 proxy for every request, without credentials in it;
	// empty means direct connections (the environment's proxy variables are ignored, as in Pulp).
	ProxyURL string
	// ProxyUsername and ProxyPassword authenticate to the proxy.
	ProxyUsername, ProxyPassword string
	// Headers are extra headers on every request to the registry's own origin; they are not
	// sent to token realms or to redirect targets on other origins. A User-Agent here is
	// appended to the client's own.
	Headers map[string]string
	// Timeout bounds manifest, HEAD, tag and token requests as a whole, and the wait for a
	// blob's response headers. Zero means 30 s. The caller's ctx can shorten it.
	Timeout time.Duration
	// IdleTimeout bounds how long one read of a blob body may wait for bytes; blobs have no
	// total timeout. Zero means 60 s.
	IdleTimeout time.Duration
	// Breakers, when set, are the circuit breakers the client shares with the process's other
	// clients: requests to a host whose breaker is open fail at once (ErrBreakerOpen).
	Breakers *Breakers `json:"-"`
	// Observer, when set, is told of every request and of the body bytes received (the
	// process's metrics).
	Observer Observer `json:"-"`
}

// Client talks to one upstream registry. It is safe for concurrent use; create one per remote
// and reuse it, so that connections and tokens are shared.
type Client struct {
	base      *url.URL // scheme, host and path prefix without a trailing slash
	username  string   // Basic credentials for token realms and Basic challenges
	password  string
	headers   http.Header // extra headers for the registry's origin, canonical keys
	userAgent string
	timeout   time.Duration
	idle      time.Duration

	transport *http.Transport
	hc        *http.Client

	tokens    tokenCache
	challenge atomic.Pointer[challenge] // the registry's last Bearer challenge (realm, service)
	basic     atomic.Bool               // the registry asked for Basic auth

	now func() time.Time // the clock of token expiry; tests replace it

	budget   budgetTracker // the pull budget the upstream reports
	breaker  *breaker      // the upstream host's circuit breaker; nil without Config.Breakers
	observer Observer      // told of requests and bytes; never nil
}

// Descriptor describes a manifest as the upstream reported it.
type Descriptor struct {
	// Digest is "sha256:<hex>": the Docker-Content-Digest header, or the hash of the body.
	Digest string
	// MediaType is the Content-Type without parameters.
	MediaType string
	// Size is the manifest's length in bytes; -1 when a HEAD answer had no Content-Length.
	Size int64
}

// New checks cfg and builds a Client with its own connection pool. It makes no request.
func New(cfg Config) (*Client, error) {
	base, err := parseBase(cfg.URL)
	if err != nil {
		return nil, err
	}
	headers, ua, err := extraHeaders(cfg.Headers)
	if err != nil {
		return nil, err
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      base,
		username:  cfg.Username,
		password:  cfg.Password,
		headers:   headers,
		userAgent: ua,
		timeout:   cfg.Timeout,
		idle:      cfg.IdleTimeout,
		transport: tr,
		tokens:    tokenCache{tokens: map[string]cachedToken{}},
		now:       time.Now,
	}
	if cfg.Breakers != nil {
		c.breaker = cfg.Breakers.of(base.Host)
	}
	c.observer = cfg.Observer
	if c.observer == nil {
		c.observer = noObserver{}
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.idle <= 0 {
		c.idle = defaultIdleTimeout
	}
	c.hc = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	return c, nil
}

// Close releases the client's idle connections. Requests still running are not affected.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

// parseBase checks the registry URL: http(s), a host, no credentials, query or fragment.
func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("upstream: URL does not parse: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("upstream: URL scheme must be http or https")
	case u.Host == "":
		return nil, errors.New("upstream: URL has no host")
	case u.User != nil:
		return nil, errors.New("upstream: URL must not contain credentials; use Username and Password")
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, errors.New("upstream: URL must not have a query or fragment")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

// extraHeaders canonicalises the configured headers and takes the User-Agent out of them.
func extraHeaders(in map[string]string) (http.Header, string, error) {
	h := http.Header{}
	ua := userAgent
	for k, v := range in {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return nil, "", fmt.Errorf("upstream: invalid header %q", k)
		}
		k = http.CanonicalHeaderKey(k)
		if k == "User-Agent" {
			if v = strings.TrimSpace(v); v != "" {
				ua += " " + v
			}
			continue
		}
		h.Set(k, v)
	}
	return h, ua, nil
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// v2URL builds <base>/v2/<repo>/<kind>/<ref>. Callers validate repo and ref first, so no
// segment can escape its place.
func (c *Client) v2URL(repo, kind, ref string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + "/v2/" + repo + "/" + kind + "/" + ref
	u.RawPath = ""
	return &u
}

// mediaType returns the Content-Type of h without parameters.
func mediaType(h http.Header) string {
	ct := h.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strings.TrimSpace(ct)
}

// call names one operation for its errors.
type call struct {
	op, repo, ref string
}

// fail builds the operation's *Error with cause err and an optional message.
func (k call) fail(err error, msg string) *Error {
	return &Error{Op: k.op, Repo: k.repo, Ref: k.ref, Message: msg, Err: err}
}

// netError wraps a failure without an HTTP answer. An *Error passes through; when ctx was
// ended by one of our own timeouts, ErrTimeout is made visible to errors.Is.
func (k call) netError(ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrTimeout) && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return k.fail(err, "")
}
