// Package remotes turns remotes (models.Remote) into upstream clients: one client per distinct
// upstream settings (URL, credentials, TLS, proxy, headers), shared by every remote that has
// them, so that they share its connections and its token cache. The pull-through cache and the
// on_demand blob fetcher both get their clients here.
package remotes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/content/lru"
	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
)

// Client is the upstream client of a remote and the hash of the settings it was made from,
// which keys everything the upstream answers (flights, negative answers, fill owners).
type Client struct {
	*upstream.Client
	Key string
}

// Clients is the table of upstream clients, by settings. Its zero value is not usable: call
// NewClients.
type Clients struct {
	timeout  time.Duration
	mu       sync.Mutex                           // serializes the creation of clients
	clients  *lru.Cache[string, *upstream.Client] // by hash of their settings
	byRemote *lru.Cache[string, Client]           // by remote id and last update

	breakers *upstream.Breakers                              // shared by every client; nil: none
	budgets  func(statusKey, host string, b upstream.Budget) // told each client's budget reports
	observer upstream.Observer                               // told of every client's requests; nil: none
}

// Observe makes the clients created from now on report their requests to o (the process's
// metrics). Call it before the first For.
func (cs *Clients) Observe(o upstream.Observer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.observer = o
}

// Watch makes the clients created from now on share breakers (nil: no breakers) and tell
// budget (when not nil) their pull budget after each report, with the remote's
// models.UpstreamBudgetKey and the upstream host. Call it before the first For.
func (cs *Clients) Watch(breakers *upstream.Breakers, budget func(statusKey, host string, b upstream.Budget)) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.breakers, cs.budgets = breakers, budget
}

// maxClients bounds the upstream clients kept (one per distinct remote settings).
const maxClients = 256

// NewClients returns an empty table; timeout is the clients' request timeout (0: none). An
// evicted client's idle connections are closed (requests in flight keep their client, which
// stays usable).
func NewClients(timeout time.Duration) *Clients {
	return &Clients{
		timeout: timeout,
		clients: lru.New(lru.Options[string, *upstream.Client]{MaxEntries: maxClients,
			OnEvict: func(_ string, cl *upstream.Client) { cl.Close() }}),
		byRemote: lru.New(lru.Options[string, Client]{MaxEntries: 10 * maxClients}),
	}
}

// For returns the upstream client of remote, shared with every remote of the same settings.
func (cs *Clients) For(remote *models.Remote) (Client, error) {
	alias := remote.ID + "@" + remote.PulpLastUpdated.String()
	if rc, ok := cs.byRemote.Get(alias); ok {
		return rc, nil
	}
	cfg := Config(remote, cs.timeout)
	key := SettingsKey(cfg)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl, ok := cs.clients.Get(key)
	if !ok {
		var err error
		cfg.Breakers, cfg.Observer = cs.breakers, cs.observer
		if cl, err = upstream.New(cfg); err != nil {
			return Client{}, fmt.Errorf("remote %s: %w", remote.Name, err)
		}
		if fn := cs.budgets; fn != nil {
			statusKey, host := models.UpstreamBudgetKey(remote), cl.Host()
			cl.WatchBudget(func(b upstream.Budget) { fn(statusKey, host, b) })
		}
		cs.clients.Add(key, cl)
	}
	rc := Client{Client: cl, Key: key}
	cs.byRemote.Add(alias, rc)
	return rc, nil
}

// SettingsKey is the hash of an upstream configuration (which holds secrets: only the hash is
// kept).
func SettingsKey(cfg upstream.Config) string {
	raw, _ := json.Marshal(cfg)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Config is what a remote says about its upstream, as the upstream client takes it.
func Config(remote *models.Remote, timeout time.Duration) upstream.Config {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	cfg := upstream.Config{URL: strings.TrimSuffix(remote.URL, "/"), TLSValidation: remote.TLSValidation, Timeout: timeout,
		Username: str(remote.Username), Password: str(remote.Password),
		CACert: str(remote.CACert), ClientCert: str(remote.ClientCert), ClientKey: str(remote.ClientKey),
		ProxyURL: str(remote.ProxyURL), ProxyUsername: str(remote.ProxyUsername), ProxyPassword: str(remote.ProxyPassword)}
	if list, ok := remote.Headers.Any().([]any); ok {
		cfg.Headers = map[string]string{}
		for _, item := range list {
			if m, ok := item.(map[string]any); ok {
				for k, v := range m {
					cfg.Headers[k] = fmt.Sprint(v)
				}
			}
		}
	}
	return cfg
}

// Error maps an upstream failure to the registry error a client sees; notFound is the answer
// to an upstream 404, an open circuit breaker is UNAVAILABLE, and a 429 keeps its Retry-After.
// A failure of this side rather than the upstream's (a full disk, an object store that is
// down: models.IsUnavailable, with no upstream error in it) is returned as is, for the
// registry to answer 503 UNAVAILABLE.
func Error(err error, notFound *oci.Error) error {
	var ue *upstream.Error
	switch {
	case !errors.As(err, &ue) && models.IsUnavailable(err):
		return err
	case upstream.IsNotFound(err):
		return notFound
	case errors.Is(err, upstream.ErrBreakerOpen):
		return oci.ErrUpstreamUnavailable
	case upstream.IsTooManyRequests(err):
		// The upstream's Retry-After goes on to the client.
		if errors.As(err, &ue) && ue.RetryAfter > 0 {
			return oci.WithRetryAfter(oci.ErrUpstreamThrottle, ue.RetryAfter)
		}
		return oci.ErrUpstreamThrottle
	case upstream.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return oci.ErrUpstreamTimeout
	case ownDependencyFailed(err):
		// This server's database, Redis (a fill's lock) or storage failed, not the upstream:
		// the registry answers it 503 UNAVAILABLE with a Retry-After.
		return err
	}
	var oe *oci.Error
	if errors.As(err, &oe) {
		return oe
	}
	return oci.ErrUpstreamBad
}

// ownDependencyFailed reports whether err is a failure of one of this server's dependencies
// that says so: a models.UnavailableError, or an error with an Unavailable() bool method
// (storage). Network errors are not enough here: they may be the upstream's.
func ownDependencyFailed(err error) bool {
	if errors.As(err, new(*models.UnavailableError)) {
		return true
	}
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// FailReader wraps a reader of a fill from an upstream so that, when the fill fails, the
// failure comes back wrapped in the registry error it maps to (an upstream failure is a 502 or
// 504, not a 500). failed returns the fill's error (nil while it has not failed).
func FailReader(rc io.ReadCloser, failed func() error, notFound *oci.Error) io.ReadCloser {
	return &failReader{ReadCloser: rc, failed: failed, notFound: notFound}
}

type failReader struct {
	io.ReadCloser
	failed   func() error
	notFound *oci.Error
}

func (r *failReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	return n, r.mapErr(err)
}

// WriteTo hands the copy to the fill's reader, which sends its staging file with sendfile.
func (r *failReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := r.ReadCloser.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	n, err := wt.WriteTo(w)
	return n, r.mapErr(err)
}

// mapErr wraps the fill's failure in the registry error it maps to.
func (r *failReader) mapErr(err error) error {
	if err != nil && err != io.EOF {
		if ferr := r.failed(); ferr != nil && err == ferr {
			err = fmt.Errorf("%w: %w", Error(ferr, r.notFound), ferr)
		}
	}
	return err
}
