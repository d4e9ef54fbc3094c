// Command pullbench is the load client of scripts/bench-pull.sh: it pulls an image from a
// registry the way docker and podman do, N pulls at once, and prints one line of JSON with the
// figures. Every byte is hashed and checked against its digest (and size) as it streams in, and
// then discarded, so a cache that serves wrong or short content shows up as errors, and no
// blob is ever held in memory.
//
//	pullbench -registry http://127.0.0.1:PORT -image docker-cache/library/large:latest -n 50 [-auth-token-flow]
//
// A pull is: GET /v2/NAME/manifests/REF with the Docker and OCI Accept list (an index or list
// is resolved to -platform's manifest by digest), then GET of the config and every layer by
// digest, -layer-concurrency at a time (docker's default is 3). A blob answer that redirects
// (Docker Hub sends 307 to its CDN) is followed by hand, without the Authorization header:
// credentials never go to another origin. With -auth-token-flow a 401 with
// "WWW-Authenticate: Bearer realm=...,service=...,scope=..." is answered the Docker Hub way:
// GET realm?service=...&scope=..., then the request is sent again with the token; without it a
// 401 is an error.
//
// With -blob DIGEST (or -blob largest: the biggest layer of the image) pullbench instead loads
// that one blob with -workers concurrent GET loops for -duration and reports the throughput of
// the bytes received (transfers still running at the end count up to there; every transfer
// that completes is verified).
//
// With -farm it is a CI build farm instead (farm.go): -clients clients, each pulling the
// comma-separated -images one after the other in a loop for -duration, each pull as above with
// a new token; the JSON line counts pulls served and failed (by the status that failed them,
// with the first error messages), the pull latency p50/p99/max, and the different manifest
// digests each image was served as. With -upstream-counts (a fakehub's counts URL) it also
// follows the upstream's moving tags and counts each pull fresh (it got the digest the tag
// pointed at upstream when the pull started, or a later one) or stale (staleness.go).
//
//	pullbench -farm -registry http://127.0.0.1:PORT -images a/farm-0:latest,a/farm-1:latest -clients 20 -duration 60s
//
// With -repeat R it runs R rounds of -n pulls one after the other, each with new connections, and
// reports the round of median wall time (rounds_seconds lists them all).
//
// The JSON line has seconds, bytes, mib_per_s and errors (plus details); the exit status is 1
// when anything failed, 2 on bad flags.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const mib = 1 << 20

// Manifest media types.
const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

// manifestAccept is the Accept list docker and podman send for manifests.
var manifestAccept = strings.Join([]string{mtOCIIndex, mtDockerList, mtOCIManifest, mtDockerManifest}, ", ")

type options struct {
	registry, image, platform, blob, label string
	n, repeat, layerConcurrency, workers   int
	duration, timeout                      time.Duration
	authTokenFlow, verify                  bool

	farm           bool
	images         []string // -images, for -farm
	clients        int
	upstreamCounts string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var res any
	var failed bool
	switch {
	case o.farm:
		r := runFarm(ctx, o)
		res, failed = r, r.Errors > 0
	case o.blob != "":
		r := runBlobLoad(ctx, o)
		res, failed = r, r.Errors > 0
	default:
		r := runPulls(ctx, o)
		res, failed = r, r.Errors > 0
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("pullbench", flag.ContinueOnError)
	fs.StringVar(&o.registry, "registry", "", "registry base URL, http://host:port (required)")
	fs.StringVar(&o.image, "image", "", "image to pull, NAME:TAG or NAME@DIGEST (required)")
	fs.IntVar(&o.n, "n", 1, "pulls at once")
	fs.IntVar(&o.repeat, "repeat", 1, "rounds of -n pulls, one after the other (the median round is reported)")
	fs.IntVar(&o.layerConcurrency, "layer-concurrency", 3, "blobs each pull fetches at once")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "platform picked from an index or manifest list")
	fs.BoolVar(&o.authTokenFlow, "auth-token-flow", false, "answer 401 Bearer challenges with Docker Hub's token flow")
	fs.StringVar(&o.blob, "blob", "", "load this blob digest (or \"largest\": the image's biggest layer) instead of pulling")
	fs.IntVar(&o.workers, "workers", 16, "concurrent GET loops with -blob")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to load the blob with -blob, or to start pulls with -farm")
	fs.BoolVar(&o.farm, "farm", false, "run a CI farm: -clients clients pulling -images in a loop for -duration")
	images := fs.String("images", "", "comma-separated images (NAME:TAG) the -farm clients pull")
	fs.IntVar(&o.clients, "clients", 20, "clients of -farm")
	fs.StringVar(&o.upstreamCounts, "upstream-counts", "", "with -farm: a fakehub's counts URL, to tell pulls of its moving tags fresh or stale")
	fs.BoolVar(&o.verify, "verify", true, "hash every blob and check its digest")
	fs.StringVar(&o.label, "label", "", "label copied into the JSON line")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (and count errors) after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, im := range strings.Split(*images, ",") {
		if im = strings.TrimSpace(im); im != "" {
			o.images = append(o.images, im)
		}
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.farm && (o.registry == "" || len(o.images) == 0):
		return o, errors.New("-farm needs -registry and -images")
	case !o.farm && (o.registry == "" || o.image == ""):
		return o, errors.New("-registry and -image are required")
	case o.n < 1 || o.repeat < 1 || o.layerConcurrency < 1 || o.workers < 1 || o.clients < 1:
		return o, errors.New("-n, -repeat, -layer-concurrency, -workers and -clients must be at least 1")
	}
	o.registry = strings.TrimRight(o.registry, "/")
	return o, nil
}

// ---------------------------------------------------------------------------------------------
// Results.

// pullResult is the JSON line of a pull run.
type pullResult struct {
	Mode             string    `json:"mode"`
	Label            string    `json:"label,omitempty"`
	Registry         string    `json:"registry"`
	Image            string    `json:"image"`
	N                int       `json:"n"`
	Repeat           int       `json:"repeat"`
	LayerConcurrency int       `json:"layer_concurrency"`
	Seconds          float64   `json:"seconds"` // wall time of the median round
	Bytes            int64     `json:"bytes"`   // bytes of that round
	MiBPerS          float64   `json:"mib_per_s"`
	RoundsSeconds    []float64 `json:"rounds_seconds"`
	PullsOK          int       `json:"pulls_ok"`
	Errors           int       `json:"errors"`
	PullSecondsMin   float64   `json:"pull_seconds_min"`
	PullSecondsP50   float64   `json:"pull_seconds_p50"`
	PullSecondsMax   float64   `json:"pull_seconds_max"`
	ManifestDigest   string    `json:"manifest_digest,omitempty"`
	Blobs            int       `json:"blobs"`
	ImageBytes       int64     `json:"image_bytes"`
	Requests         int64     `json:"requests"`
	TokenRequests    int64     `json:"token_requests"`
	Redirects        int64     `json:"redirects"`
	ErrorSamples     []string  `json:"error_samples,omitempty"`
}

// blobResult is the JSON line of a blob load run.
type blobResult struct {
	Mode      string   `json:"mode"`
	Label     string   `json:"label,omitempty"`
	Registry  string   `json:"registry"`
	Image     string   `json:"image"`
	Digest    string   `json:"digest"`
	BlobBytes int64    `json:"blob_bytes"`
	Workers   int      `json:"workers"`
	Seconds   float64  `json:"seconds"`
	Bytes     int64    `json:"bytes"`
	MiBPerS   float64  `json:"mib_per_s"`
	Completed int64    `json:"completed"`
	Verified  int64    `json:"verified"`
	Errors    int      `json:"errors"`
	Samples   []string `json:"error_samples,omitempty"`
}

// errorLog counts errors and keeps the first few messages.
type errorLog struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (e *errorLog) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.samples) < 8 {
		e.samples = append(e.samples, err.Error())
		fmt.Fprintln(os.Stderr, "pullbench: error:", err)
	}
}

// ---------------------------------------------------------------------------------------------
// Pull mode.

func runPulls(ctx context.Context, o options) pullResult {
	res := pullResult{Mode: "pull", Label: o.label, Registry: o.registry, Image: o.image, N: o.n,
		Repeat: o.repeat, LayerConcurrency: o.layerConcurrency}
	var stats clientStats
	var errs errorLog
	type one struct {
		secs   float64
		bytes  int64
		digest string
		blobs  int
		ok     bool
	}
	type round struct {
		secs  float64
		bytes int64
	}
	var rounds []round
	var secs []float64
	for r := range o.repeat {
		// A new client each round, as each docker pull is a new process with new connections.
		hc := newHTTPClient(o.n * (o.layerConcurrency + 1))
		outs := make([]one, o.n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range o.n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &client{hc: hc, base: o.registry, authFlow: o.authTokenFlow, stats: &stats}
				t0 := time.Now()
				p, err := c.pull(ctx, o.image, o.platform, o.layerConcurrency, o.verify)
				outs[i] = one{secs: time.Since(t0).Seconds(), bytes: p.bytes, digest: p.digest, blobs: p.blobs, ok: err == nil}
				if err != nil {
					errs.add(fmt.Errorf("round %d, pull %d of %d: %w", r+1, i+1, o.n, err))
				}
			}()
		}
		wg.Wait()
		rd := round{secs: time.Since(start).Seconds()}
		hc.CloseIdleConnections()
		for _, p := range outs {
			rd.bytes += p.bytes
			if p.ok {
				res.PullsOK++
				secs = append(secs, p.secs)
				if res.ManifestDigest == "" {
					res.ManifestDigest, res.Blobs, res.ImageBytes = p.digest, p.blobs, p.bytes
				}
			}
		}
		rounds = append(rounds, rd)
		res.RoundsSeconds = append(res.RoundsSeconds, round3(rd.secs))
		if ctx.Err() != nil {
			break
		}
	}
	// The round of median wall time stands for the run.
	slices.SortFunc(rounds, func(a, b round) int { return cmpFloat(a.secs, b.secs) })
	med := rounds[(len(rounds)-1)/2]
	res.Seconds, res.Bytes = round3(med.secs), med.bytes
	res.MiBPerS = round3(float64(med.bytes) / mib / med.secs)
	if len(secs) > 0 {
		slices.Sort(secs)
		res.PullSecondsMin, res.PullSecondsP50, res.PullSecondsMax = round3(secs[0]), round3(secs[len(secs)/2]), round3(secs[len(secs)-1])
	}
	res.Errors, res.ErrorSamples = errs.n, errs.samples
	res.Requests, res.TokenRequests, res.Redirects = stats.requests.Load(), stats.tokens.Load(), stats.redirects.Load()
	return res
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pulled is what one pull fetched.
type pulled struct {
	digest string // the manifest digest (of the platform's manifest for an index)
	blobs  int
	bytes  int64 // manifest(s) and blobs
}

// pull fetches image's manifest (resolving an index to platform) and all its blobs.
func (c *client) pull(ctx context.Context, image, platform string, concurrency int, verify bool) (pulled, error) {
	var p pulled
	name, ref, err := splitImage(image)
	if err != nil {
		return p, err
	}
	c.name = name
	m, mbytes, err := c.image(ctx, ref, platform)
	p.bytes += mbytes
	if err != nil {
		return p, err
	}
	p.digest = m.digest
	blobs := m.Layers
	if m.Config != nil {
		blobs = append([]descriptor{*m.Config}, blobs...)
	}
	if len(blobs) == 0 {
		return p, fmt.Errorf("%s: manifest %s lists no config or layers", image, m.digest)
	}
	p.blobs = len(blobs)

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		total atomic.Int64
		sem   = make(chan struct{}, concurrency)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, b := range blobs {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.fetchBlob(ctx, b.Digest, b.Size, verify, &total); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel() // a failed pull stops, as docker's does
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p.bytes += total.Load()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return p, first
}

// image GETs the manifest REF and, when it is an index or a manifest list, platform's manifest
// from it; it also returns the bytes of the manifests it read.
func (c *client) image(ctx context.Context, ref, platform string) (manifest, int64, error) {
	m, err := c.manifest(ctx, ref)
	if err != nil {
		return m, 0, err
	}
	n := int64(len(m.body))
	if len(m.Manifests) == 0 && m.MediaType != mtOCIIndex && m.MediaType != mtDockerList {
		return m, n, nil
	}
	var child string
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS+"/"+d.Platform.Architecture == platform {
			child = d.Digest
			break
		}
	}
	if child == "" {
		return m, n, fmt.Errorf("%s:%s: the index has no %s manifest", c.name, ref, platform)
	}
	m, err = c.manifest(ctx, child)
	return m, n + int64(len(m.body)), err
}

// ---------------------------------------------------------------------------------------------
// Blob load mode.

func runBlobLoad(ctx context.Context, o options) blobResult {
	res := blobResult{Mode: "blob", Label: o.label, Registry: o.registry, Image: o.image, Workers: o.workers}
	var errs errorLog
	finish := func() blobResult {
		res.Errors, res.Samples = errs.n, errs.samples
		return res
	}
	name, ref, err := splitImage(o.image)
	if err != nil {
		errs.add(err)
		return finish()
	}
	hc := newHTTPClient(o.workers + 1)
	var stats clientStats
	c := &client{hc: hc, base: o.registry, name: name, authFlow: o.authTokenFlow, stats: &stats}
	m, _, err := c.image(ctx, ref, o.platform)
	if err != nil {
		errs.add(err)
		return finish()
	}
	digest, size := o.blob, int64(-1)
	if o.blob == "largest" {
		digest = ""
		for _, d := range m.Layers {
			if d.Size > size {
				size, digest = d.Size, d.Digest
			}
		}
		if digest == "" {
			errs.add(fmt.Errorf("%s: manifest %s lists no layers", o.image, m.digest))
			return finish()
		}
	} else {
		all := m.Layers
		if m.Config != nil {
			all = append(all, *m.Config)
		}
		for _, d := range all {
			if d.Digest == digest {
				size = d.Size
			}
		}
	}
	res.Digest, res.BlobBytes = digest, size

	var total, completed, verified atomic.Int64
	loadCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := &client{hc: hc, base: o.registry, name: name, authFlow: o.authTokenFlow, stats: &stats, token: c.token}
			for loadCtx.Err() == nil {
				_, err := wc.fetchBlob(loadCtx, digest, size, o.verify, &total)
				switch {
				case err == nil:
					completed.Add(1)
					if o.verify {
						verified.Add(1)
					}
				case loadCtx.Err() != nil && ctx.Err() == nil:
					// cut off by the end of the run: its bytes count, it is no error
				default:
					errs.add(err)
					if ctx.Err() != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	res.Seconds, res.Bytes = round3(secs), total.Load()
	res.MiBPerS = round3(float64(res.Bytes) / mib / secs)
	res.Completed, res.Verified = completed.Load(), verified.Load()
	return finish()
}

// ---------------------------------------------------------------------------------------------
// Registry client.

// clientStats counts requests across clients.
type clientStats struct {
	requests, tokens, redirects atomic.Int64
}

// client is one puller: a repository name and its bearer token, over a shared transport.
type client struct {
	hc       *http.Client
	base     string
	name     string
	authFlow bool
	stats    *clientStats

	mu    sync.Mutex
	token string
}

func newHTTPClient(conns int) *http.Client {
	conns = max(conns, 16)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // 127.0.0.1 only
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          2 * conns,
			MaxIdleConnsPerHost:   2 * conns,
			IdleConnTimeout:       60 * time.Second,
			DisableCompression:    true,
			ResponseHeaderTimeout: 5 * time.Minute, // a cold cache may fetch before it answers
			ReadBufferSize:        64 << 10,
		},
		// Redirects are followed by hand (fetchBlob), so no header leaks to another origin.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get sends GET url with the header h (and the bearer token, if any); with authFlow it answers
// a Bearer challenge once and sends the request again.
func (c *client) get(ctx context.Context, u string, h http.Header) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range h {
			req.Header[k] = v
		}
		c.mu.Lock()
		tok := c.token
		c.mu.Unlock()
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		c.stats.requests.Add(1)
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			return resp, nil
		}
		chal := resp.Header.Get("WWW-Authenticate")
		msg := snippet(resp)
		if !c.authFlow {
			return nil, fmt.Errorf("GET %s: 401 (%s) %s; pass -auth-token-flow for Docker Hub token auth", u, chal, msg)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("GET %s: 401 again after getting a token (%s) %s", u, chal, msg)
		}
		if err := c.fetchToken(ctx, chal); err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
	}
}

// fetchToken answers a "Bearer realm=...,service=...,scope=..." challenge.
func (c *client) fetchToken(ctx context.Context, challenge string) error {
	scheme, params := parseChallenge(challenge)
	if !strings.EqualFold(scheme, "bearer") || params["realm"] == "" {
		return fmt.Errorf("401 with challenge %q, want Bearer realm=...", challenge)
	}
	tu, err := url.Parse(params["realm"])
	if err != nil {
		return fmt.Errorf("token realm %q: %w", params["realm"], err)
	}
	q := tu.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := params["scope"]
	if scope == "" && c.name != "" {
		scope = "repository:" + c.name + ":pull"
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	tu.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tu.String(), nil)
	if err != nil {
		return err
	}
	c.stats.tokens.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token %s: %s %s", tu, resp.Status, trim(body))
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return fmt.Errorf("token %s: %w", tu, err)
	}
	tok := cmpOr(t.Token, t.AccessToken)
	if tok == "" {
		return fmt.Errorf("token %s: no token in %s", tu, trim(body))
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return nil
}

// parseChallenge splits `Bearer realm="x",service="y"` into its scheme and parameters.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
		}
		params[key] = strings.TrimSpace(val)
		rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
		rest = strings.TrimSpace(rest)
	}
	return scheme, params
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`

	body   []byte
	digest string
}

// manifest GETs /v2/NAME/manifests/REF and checks its digest: against REF when REF is a
// digest, and against Docker-Content-Digest when the registry sends one.
func (c *client) manifest(ctx context.Context, ref string) (manifest, error) {
	var m manifest
	u := c.base + "/v2/" + c.name + "/manifests/" + ref
	resp, err := c.get(ctx, u, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: %s %s", u, resp.Status, snippet(resp))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*mib))
	if err != nil {
		return m, fmt.Errorf("GET %s: %w", u, err)
	}
	sum := sha256.Sum256(body)
	m.digest = "sha256:" + hex.EncodeToString(sum[:])
	if strings.Contains(ref, ":") && ref != m.digest {
		return m, fmt.Errorf("GET %s: body hashes to %s", u, m.digest)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != m.digest {
		return m, fmt.Errorf("GET %s: Docker-Content-Digest %s, body hashes to %s", u, h, m.digest)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("GET %s: %w", u, err)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); m.MediaType == "" {
		m.MediaType = ct
	}
	m.body = body
	return m, nil
}

// fetchBlob GETs /v2/NAME/blobs/DIGEST, following redirects by hand without credentials,
// streams the body through the digest's hash into nothing, adds the bytes to total as they
// arrive, and checks size (unless negative) and digest.
func (c *client) fetchBlob(ctx context.Context, digest string, size int64, verify bool, total *atomic.Int64) (int64, error) {
	u := c.base + "/v2/" + c.name + "/blobs/" + digest
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return 0, err
	}
	for hops := 0; resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != ""; hops++ {
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		drain(resp)
		if err != nil {
			return 0, fmt.Errorf("GET %s: bad redirect: %w", u, err)
		}
		if hops >= 5 {
			return 0, fmt.Errorf("GET %s: more than 5 redirects", u)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
		if err != nil {
			return 0, err
		}
		c.stats.requests.Add(1)
		c.stats.redirects.Add(1)
		if resp, err = c.hc.Do(req); err != nil {
			return 0, fmt.Errorf("GET %s (redirected to %s): %w", u, loc.Redacted(), err)
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s %s", u, resp.Status, snippet(resp))
	}
	var h hash.Hash
	if verify {
		alg, _, _ := strings.Cut(digest, ":")
		switch alg {
		case "sha256":
			h = sha256.New()
		case "sha512":
			h = sha512.New()
		default:
			return 0, fmt.Errorf("GET %s: cannot verify a %s digest", u, alg)
		}
	}
	w := &countWriter{h: h, total: total}
	buf := bufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(w, struct{ io.Reader }{resp.Body}, *buf)
	bufPool.Put(buf)
	if err != nil {
		return n, fmt.Errorf("GET %s: after %d bytes: %w", u, n, err)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("GET %s: got %d bytes, want %d", u, n, size)
	}
	if h != nil {
		alg, _, _ := strings.Cut(digest, ":")
		if got := alg + ":" + hex.EncodeToString(h.Sum(nil)); got != digest {
			return n, fmt.Errorf("GET %s: body hashes to %s", u, got)
		}
	}
	return n, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// countWriter hashes (when h is set) and counts what it is given, then drops it.
type countWriter struct {
	h     hash.Hash
	total *atomic.Int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	if w.h != nil {
		w.h.Write(p)
	}
	w.total.Add(int64(len(p)))
	return len(p), nil
}

// ---------------------------------------------------------------------------------------------
// Helpers.

// splitImage splits NAME:TAG or NAME@DIGEST.
func splitImage(image string) (name, ref string, err error) {
	if name, ref, ok := strings.Cut(image, "@"); ok {
		return name, ref, nil
	}
	i := strings.LastIndex(image, ":")
	if i <= 0 || strings.Contains(image[i:], "/") {
		return image, "latest", nil
	}
	return image[:i], image[i+1:], nil
}

// snippet reads and closes a short part of an error body.
func snippet(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return trim(b)
}

func trim(b []byte) string { return strings.TrimSpace(string(b)) }

// drain reads a little of a body and closes it, so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
