package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/flight"
)

const (
	// opToken is the Op of errors from a token realm.
	opToken = "get token"
	// defaultTokenLife applies when a token response has no expires_in.
	defaultTokenLife = 60 * time.Second
	// maxTokenLife caps expires_in.
	maxTokenLife = 24 * time.Hour
	// maxTokenBody bounds a token response.
	maxTokenBody = 1 << 20
	// maxTokenSize bounds one token kept; real registries' tokens are a few KiB.
	maxTokenSize = 16 << 10
	// maxTokens bounds the tokens one client keeps (one per scope, so per repository pulled):
	// with maxTokenSize, at most 8 MiB per client.
	maxTokens = 512
)

// challenge is one WWW-Authenticate challenge: its scheme (lower case) and the parameters a
// client needs.
type challenge struct {
	scheme  string
	realm   string
	service string
}

// parseChallenges reads WWW-Authenticate values (RFC 9110 syntax: a scheme, then
// comma-separated name=value pairs, values quoted or not; one header may hold several
// challenges).
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, s := range values {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			var scheme string
			if i := strings.IndexAny(s, " \t,"); i < 0 {
				scheme, s = s, ""
			} else {
				scheme, s = s[:i], s[i:]
			}
			ch := challenge{scheme: strings.ToLower(scheme)}
			for {
				rest := strings.TrimLeft(s, " \t,")
				i := strings.IndexAny(rest, " \t,=")
				if i <= 0 {
					break
				}
				name := rest[:i]
				after := strings.TrimLeft(rest[i:], " \t")
				if !strings.HasPrefix(after, "=") {
					break // a new challenge starts at rest
				}
				var value string
				value, s = readParamValue(strings.TrimLeft(after[1:], " \t"))
				switch strings.ToLower(name) {
				case "realm":
					ch.realm = value
				case "service":
					ch.service = value
				}
			}
			out = append(out, ch)
		}
	}
	return out
}

// readParamValue reads a quoted string (with backslash escapes) or a token from the start of s.
func readParamValue(s string) (value, rest string) {
	if !strings.HasPrefix(s, `"`) {
		if i := strings.IndexAny(s, " \t,"); i >= 0 {
			return s[:i], s[i:]
		}
		return s, ""
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// cachedToken is a bearer token and the time to stop sending it.
type cachedToken struct {
	value     string
	refreshAt time.Time
}

// tokenCache keeps bearer tokens per scope and makes sure only one request per scope is
// in flight.
type tokenCache struct {
	mu      sync.Mutex
	tokens  map[string]cachedToken
	flights flight.Group[string]
}

// keep caches t for scope; when the cache is full, expired tokens go, then all of them.
// Called with tc.mu held.
func (tc *tokenCache) keep(scope string, t cachedToken, now time.Time) {
	if len(tc.tokens) >= maxTokens {
		for k, old := range tc.tokens {
			if !now.Before(old.refreshAt) {
				delete(tc.tokens, k)
			}
		}
		if len(tc.tokens) >= maxTokens {
			clear(tc.tokens)
		}
	}
	tc.tokens[scope] = t
}

// get returns the cached token for scope if it is still good at now.
func (tc *tokenCache) get(scope string, now time.Time) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.tokens[scope]
	if !ok || !now.Before(t.refreshAt) {
		return "", false
	}
	return t.value, true
}

// do returns a usable token for scope: the cached one unless it has expired or equals stale
// (the registry just rejected it), else the result of the request in flight for scope, else
// that of a new request. The request runs on a context detached from ctx with its own
// timeout, so one caller giving up does not fail the others; ctx only bounds the wait.
func (tc *tokenCache) do(ctx context.Context, scope, stale string, now time.Time, timeout time.Duration,
	fetch func(context.Context) (cachedToken, error)) (string, error) {
	tc.mu.Lock()
	if t, ok := tc.tokens[scope]; ok {
		if t.value != stale && now.Before(t.refreshAt) {
			tc.mu.Unlock()
			return t.value, nil
		}
		delete(tc.tokens, scope)
	}
	tc.mu.Unlock()
	tok, err, _ := tc.flights.Do(ctx, scope, func() (string, error) {
		fctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), timeout, ErrTimeout)
		defer cancel()
		t, err := fetch(fctx)
		if err != nil {
			return "", err
		}
		tc.mu.Lock()
		tc.keep(scope, t, now)
		tc.mu.Unlock()
		return t.value, nil
	})
	return tok, err
}

// token returns a bearer token for scope from the realm of ch, through the cache.
func (c *Client) token(ctx context.Context, k call, ch challenge, scope, stale string) (string, error) {
	tok, err := c.tokens.do(ctx, scope, stale, c.now(), c.timeout, func(fctx context.Context) (cachedToken, error) {
		return c.fetchToken(fctx, k, ch, scope)
	})
	if err == nil {
		return tok, nil
	}
	var e *Error
	if errors.As(err, &e) {
		// The flight may have been started by another call on the same repository.
		cp := *e
		cp.Ref = k.ref
		return "", &cp
	}
	return "", call{op: opToken, repo: k.repo, ref: k.ref}.netError(ctx, err)
}

// realmURL parses the realm of a Bearer challenge and checks that it may be sent the remote's
// credentials: an http(s) URL with a host, and not plain http when the registry is https (the
// realm may be on another host, as Docker Hub's is). A refusal is an *Error with Op "get token".
func (c *Client) realmURL(k call, raw string) (*url.URL, error) {
	kt := call{op: opToken, repo: k.repo, ref: k.ref}
	realm, err := url.Parse(raw)
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") || realm.Host == "" {
		return nil, kt.fail(ErrBadResponse, "challenge realm is not an http(s) URL")
	}
	if strings.EqualFold(c.base.Scheme, "https") && realm.Scheme == "http" {
		return nil, kt.fail(ErrBadResponse, "token realm on "+quoteBad(realm.Host)+
			" is plain http but the registry is https; credentials are not sent there")
	}
	return realm, nil
}

// tokenResponse is the JSON of a token realm; Docker's spec names the token "token", OAuth2
// names it "access_token".
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken asks the realm of ch for a token for scope, with the remote's credentials as
// Basic auth when it has a username. A refusal is an *Error with Op "get token".
func (c *Client) fetchToken(ctx context.Context, k call, ch challenge, scope string) (cachedToken, error) {
	kt := call{op: opToken, repo: k.repo, ref: k.ref}
	realm, err := c.realmURL(k, ch.realm)
	if err != nil {
		return cachedToken{}, err
	}
	q := realm.Query()
	if ch.service != "" {
		q.Set("service", ch.service)
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return cachedToken{}, kt.fail(err, "")
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if c.username != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observer.UpstreamRequest(KindToken, 0)
		return cachedToken{}, kt.netError(ctx, err)
	}
	c.observer.UpstreamRequest(KindToken, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return cachedToken{}, statusError(kt.op, kt.repo, kt.ref, resp)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	c.observer.UpstreamBytes(KindToken, len(body))
	if err != nil {
		return cachedToken{}, kt.netError(ctx, err)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return cachedToken{}, kt.fail(ErrBadResponse, "token response is not JSON")
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return cachedToken{}, kt.fail(ErrBadResponse, "token response has no token")
	}
	if len(tok) > maxTokenSize {
		return cachedToken{}, kt.fail(ErrBadResponse, "token is larger than 16 KiB")
	}
	life := defaultTokenLife
	switch {
	case tr.ExpiresIn > int64(maxTokenLife/time.Second):
		life = maxTokenLife
	case tr.ExpiresIn > 0:
		life = time.Duration(tr.ExpiresIn) * time.Second
	}
	// Stop using the token shortly before it expires: a fifth of its life, at most 30 s.
	margin := min(life/5, 30*time.Second)
	return cachedToken{value: tok, refreshAt: c.now().Add(life - margin)}, nil
}
