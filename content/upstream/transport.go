package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxRedirects is how many redirects one request may follow.
const maxRedirects = 10

// newTransport builds the one http.Transport of a Client from the remote's TLS, certificate
// and proxy settings. Compression is off so blob bytes arrive exactly as the upstream stored
// them.
func newTransport(cfg Config) (*http.Transport, error) {
	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !cfg.TLSValidation, //nolint:gosec // the remote's tls_validation=false
	}
	if cfg.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(cfg.CACert)) {
			return nil, errors.New("upstream: CACert holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	if (cfg.ClientCert == "") != (cfg.ClientKey == "") {
		return nil, errors.New("upstream: ClientCert and ClientKey must be given together")
	}
	if cfg.ClientCert != "" {
		pair, err := tls.X509KeyPair([]byte(cfg.ClientCert), []byte(cfg.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("upstream: client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	proxy, err := proxyFunc(cfg)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}, nil
}

// proxyFunc returns the transport's Proxy for cfg: nil without a ProxyURL, else that URL with
// the proxy credentials in it (net/http turns them into Proxy-Authorization, for plain
// requests and for CONNECT alike).
func proxyFunc(cfg Config) (func(*http.Request) (*url.URL, error), error) {
	if cfg.ProxyURL == "" {
		if cfg.ProxyUsername != "" || cfg.ProxyPassword != "" {
			return nil, errors.New("upstream: proxy credentials given without ProxyURL")
		}
		return nil, nil
	}
	u, err := url.Parse(cfg.ProxyURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("upstream: ProxyURL does not parse: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h":
		return nil, errors.New("upstream: ProxyURL scheme must be http, https or socks5")
	case u.Host == "":
		return nil, errors.New("upstream: ProxyURL has no host")
	case u.User != nil:
		return nil, errors.New("upstream: ProxyURL must not contain credentials; use ProxyUsername and ProxyPassword")
	}
	if cfg.ProxyUsername != "" {
		u.User = url.UserPassword(cfg.ProxyUsername, cfg.ProxyPassword)
	} else if cfg.ProxyPassword != "" {
		return nil, errors.New("upstream: ProxyPassword given without ProxyUsername")
	}
	return http.ProxyURL(u), nil
}

// checkRedirect follows at most maxRedirects redirects. A hop to another origin than the first
// request's (scheme, host and port all count) loses the Authorization and Cookie headers and
// the configured extra headers; net/http alone compares host names only.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", ErrBadResponse, maxRedirects)
	}
	if !sameOrigin(req.URL, via[0].URL) {
		req.Header.Del("Authorization")
		req.Header.Del("Cookie")
		for k := range c.headers {
			req.Header.Del(k)
		}
	}
	return nil
}

// sameOrigin compares scheme, host and port, with the scheme's default port filled in.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b)
}

// portOf returns u's port, or the default port of its scheme.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// credential records what a request carried, so a 401 can tell a rejected token from a
// missing one.
type credential struct {
	bearer string // the token sent, if any
	basic  bool   // Basic credentials were sent
}

// send makes one request to the registry's origin and authenticates as the registry asks:
// cached credentials go out pre-emptively, and a 401 challenge is answered once. Any other
// answer, including a second 401, is returned for the caller to judge; a 401 that cannot be
// answered, or that a redirect target on another origin sent, becomes an *Error.
//
// A request to a host whose circuit breaker is open fails at once with ErrBreakerOpen; the
// outcome of every other one goes to the breaker, and a manifest answer's RateLimit headers
// (or a 429) to the client's pull budget.
func (c *Client) send(ctx context.Context, k call, method string, u *url.URL, hdr http.Header) (*http.Response, error) {
	if c.breaker != nil {
		if ok, retryAt := c.breaker.allow(); !ok {
			return nil, k.fail(ErrBreakerOpen, "no request until "+retryAt.UTC().Format(time.RFC3339))
		}
	}
	sent := c.now()
	resp, err := c.exchange(ctx, k, method, u, hdr)
	if c.breaker != nil {
		c.breaker.done(judge(ctx, resp, err))
	}
	if err == nil && (k.op == "head manifest" || k.op == "get manifest") {
		c.budget.observe(resp.Header, resp.StatusCode, sent, c.now())
	}
	return resp, err
}

// exchange is send without the breaker and the budget.
func (c *Client) exchange(ctx context.Context, k call, method string, u *url.URL, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, k.fail(err, "")
	}
	for name, v := range c.headers {
		req.Header[name] = append([]string(nil), v...)
	}
	for name, v := range hdr {
		req.Header[name] = v
	}
	req.Header.Set("User-Agent", c.userAgent)
	scope := pullScope(k.repo)
	sent, err := c.authorize(ctx, k, req, scope)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, k, req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	challenges := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	denied := statusError(k.op, k.repo, k.ref, resp)
	retry, err := c.answer(ctx, k, req, scope, challenges, sent)
	if err != nil {
		return nil, err
	}
	if retry == nil {
		return nil, denied
	}
	return c.do(ctx, k, retry)
}

// do sends req, following redirects. A 401 is returned as it is only when the registry's own
// origin sent it; one from a redirect target on another origin becomes an *Error at once, so
// its challenge is never answered with the remote's credentials nor remembered.
func (c *Client) do(ctx context.Context, k call, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observer.UpstreamRequest(kindOf(k.op), 0)
		return nil, k.netError(ctx, err)
	}
	c.observer.UpstreamRequest(kindOf(k.op), resp.StatusCode)
	if resp.StatusCode == http.StatusUnauthorized && !c.fromRegistry(resp) {
		return nil, foreignDenial(k, resp)
	}
	return resp, nil
}

// fromRegistry reports whether resp came from the registry's own origin (scheme, host and
// port), not from a redirect target elsewhere: only such an answer may ask for credentials.
func (c *Client) fromRegistry(resp *http.Response) bool {
	return resp.Request != nil && resp.Request.URL != nil && sameOrigin(resp.Request.URL, c.base)
}

// foreignDenial is the error for a 401 from a redirect target on another origin. The body's
// error code and message are that server's, not the registry's, so the error names the
// target instead.
func foreignDenial(k call, resp *http.Response) *Error {
	e := statusError(k.op, k.repo, k.ref, resp)
	e.Code = ""
	e.Message = "redirect target " + quoteBad(resp.Request.URL.Host) +
		" asked for credentials; only the registry's own origin is given any"
	return e
}

// pullScope is the token scope for pulling from repo.
func pullScope(repo string) string { return "repository:" + repo + ":pull" }

// authorize adds the credentials the registry is known to want: Basic after a Basic challenge,
// else a cached token for scope, else a new token when a Bearer challenge was seen before
// (which saves the 401 round trip for every new repository).
func (c *Client) authorize(ctx context.Context, k call, req *http.Request, scope string) (credential, error) {
	if c.basic.Load() && c.username != "" {
		req.SetBasicAuth(c.username, c.password)
		return credential{basic: true}, nil
	}
	if tok, ok := c.tokens.get(scope, c.now()); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
		return credential{bearer: tok}, nil
	}
	ch := c.challenge.Load()
	if ch == nil {
		return credential{}, nil
	}
	tok, err := c.token(ctx, k, *ch, scope, "")
	if err != nil {
		return credential{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return credential{bearer: tok}, nil
}

// answer returns the request to retry after a 401 with the given challenges, or nil when
// there is nothing better to send than what was sent. The challenges must come from the
// registry's own origin (see do); a Bearer realm the remote's credentials may not go to is an
// error, and is not remembered.
func (c *Client) answer(ctx context.Context, k call, req *http.Request, scope string, chs []challenge, sent credential) (*http.Request, error) {
	for _, ch := range chs {
		if ch.scheme != "bearer" || ch.realm == "" {
			continue
		}
		if _, err := c.realmURL(k, ch.realm); err != nil {
			return nil, err
		}
		c.challenge.Store(&challenge{scheme: ch.scheme, realm: ch.realm, service: ch.service})
		tok, err := c.token(ctx, k, ch, scope, sent.bearer)
		if err != nil {
			return nil, err
		}
		retry := req.Clone(ctx)
		retry.Header.Set("Authorization", "Bearer "+tok)
		return retry, nil
	}
	for _, ch := range chs {
		if ch.scheme != "basic" || c.username == "" || sent.basic {
			continue
		}
		c.basic.Store(true)
		retry := req.Clone(ctx)
		retry.SetBasicAuth(c.username, c.password)
		return retry, nil
	}
	return nil, nil
}
