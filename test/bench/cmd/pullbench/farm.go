package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// farmResult is the JSON line of a farm run: -clients build machines, each pulling the
// -images one after the other in a loop for -duration.
type farmResult struct {
	Mode     string   `json:"mode"`
	Label    string   `json:"label,omitempty"`
	Registry string   `json:"registry"`
	Images   []string `json:"images"`
	Clients  int      `json:"clients"`
	// Seconds is the wall time from the first pull to the end of the last one (pulls
	// running at the end of -duration are finished, not cut off).
	Seconds float64 `json:"seconds"`
	// Pulls counts the pulls started; PullsOK and PullsFailed (also Errors) split them.
	Pulls       int `json:"pulls"`
	PullsOK     int `json:"pulls_ok"`
	PullsFailed int `json:"pulls_failed"`
	Errors      int `json:"errors"`
	// ErrorKinds counts failed pulls by the HTTP status that failed them ("429", "502"...),
	// or "digest", "timeout", "other".
	ErrorKinds     map[string]int `json:"error_kinds,omitempty"`
	ErrorSamples   []string       `json:"error_samples,omitempty"`
	PullSecondsP50 float64        `json:"pull_seconds_p50"`
	PullSecondsP99 float64        `json:"pull_seconds_p99"`
	PullSecondsMax float64        `json:"pull_seconds_max"`
	// DigestsServed counts, per image, the different manifest digests its successful pulls
	// got: how many of the tag's moves the clients saw.
	DigestsServed map[string]int `json:"digests_served"`
	// Freshness, with -upstream-counts, tells the served pulls fresh or stale against the
	// upstream's moving tags.
	Freshness     *freshness `json:"freshness,omitempty"`
	Bytes         int64      `json:"bytes"`
	Requests      int64      `json:"requests"`
	TokenRequests int64      `json:"token_requests"`
	Redirects     int64      `json:"redirects"`
}

// freshness counts served pulls by how many moves behind the upstream's tag they were.
type freshness struct {
	// Fresh pulls got the digest the upstream's tag pointed at when the pull started, or a
	// later one.
	Fresh int `json:"fresh"`
	// Stale pulls got an older digest; MaxBehind is the most moves one was behind.
	Stale     int `json:"stale"`
	MaxBehind int `json:"max_behind"`
	// Unknown pulls got a digest of no generation the upstream was seen at.
	Unknown int `json:"unknown"`
	// PollError is the last failed read of the upstream's moving tags, if any.
	PollError string `json:"poll_error,omitempty"`
}

// farmPull is the outcome of one pull of a farm run.
type farmPull struct {
	image, digest string
	want          int // the upstream tag's generation when the pull started; -1: unknown
	secs          float64
	bytes         int64
	err           error
}

// runFarm runs the farm: every client pulls the images in turn, starting at an image of
// its own so that they do not march in step, and starts pulls until -duration is over. A
// pull is what a docker or podman pull does over HTTP (pull), with a new token each time,
// as each pull is a new process; the connections are shared, as a daemon's are.
func runFarm(ctx context.Context, o options) farmResult {
	loadCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	return farmUntil(ctx, loadCtx, o)
}

// farmUntil is runFarm with the end of the pulls given: clients start pulls until loadCtx
// ends, and pulls already started run on ctx.
func farmUntil(ctx, loadCtx context.Context, o options) farmResult {
	res := farmResult{Mode: "farm", Label: o.label, Registry: o.registry, Images: o.images, Clients: o.clients,
		ErrorKinds: map[string]int{}, DigestsServed: map[string]int{}}
	hc := newHTTPClient(o.clients * (o.layerConcurrency + 1))
	defer hc.CloseIdleConnections()
	var stats clientStats
	var errs errorLog
	outs := make(chan farmPull, 256)
	var st *staleness
	if o.upstreamCounts != "" {
		st = newStaleness(o.upstreamCounts, newHTTPClient(1))
		if err := st.poll(ctx); err != nil {
			errs.add(fmt.Errorf("read the upstream's moving tags: %w", err))
			res.Errors, res.ErrorSamples = errs.n, errs.samples
			return res
		}
		pollCtx, stopPoll := context.WithCancel(ctx)
		defer stopPoll()
		go st.run(pollCtx)
	}

	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; loadCtx.Err() == nil; n++ {
				image := o.images[n%len(o.images)]
				want := -1
				if st != nil {
					name, _, _ := splitImage(image)
					want = st.generationNow(name)
				}
				c := &client{hc: hc, base: o.registry, authFlow: o.authTokenFlow, stats: &stats}
				t0 := time.Now()
				p, err := c.pull(ctx, image, o.platform, o.layerConcurrency, o.verify)
				outs <- farmPull{image: image, digest: p.digest, want: want, secs: time.Since(t0).Seconds(), bytes: p.bytes, err: err}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(outs)
	}()

	var secs []float64
	var served []farmPull // with a generation to compare, for freshness
	digests := map[string]map[string]bool{}
	for p := range outs {
		res.Pulls++
		res.Bytes += p.bytes
		if p.err != nil {
			res.PullsFailed++
			res.ErrorKinds[errorKind(p.err)]++
			errs.add(fmt.Errorf("pull %s: %w", p.image, p.err))
			continue
		}
		res.PullsOK++
		secs = append(secs, p.secs)
		if p.want >= 0 {
			served = append(served, p)
		}
		if digests[p.image] == nil {
			digests[p.image] = map[string]bool{}
		}
		digests[p.image][p.digest] = true
	}
	res.Seconds = round3(time.Since(start).Seconds())
	if st != nil {
		res.Freshness = st.judge(ctx, served)
	}
	for image, ds := range digests {
		res.DigestsServed[image] = len(ds)
	}
	if len(secs) > 0 {
		slices.Sort(secs)
		res.PullSecondsP50 = round3(secs[len(secs)/2])
		res.PullSecondsP99 = round3(secs[min(len(secs)-1, len(secs)*99/100)])
		res.PullSecondsMax = round3(secs[len(secs)-1])
	}
	res.Errors, res.ErrorSamples = errs.n, errs.samples
	res.Requests, res.TokenRequests, res.Redirects = stats.requests.Load(), stats.tokens.Load(), stats.redirects.Load()
	return res
}

// statusRE finds the HTTP status in our request errors ("GET url: 429 Too Many Requests").
var statusRE = regexp.MustCompile(`: ([1-5][0-9][0-9]) [A-Z]`)

// errorKind names what failed a pull: its HTTP status, a digest mismatch, a timeout, or other.
func errorKind(err error) string {
	msg := err.Error()
	switch m := statusRE.FindStringSubmatch(msg); {
	case m != nil:
		return m[1]
	case strings.Contains(msg, "hashes to"):
		return "digest"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "timeout"):
		return "timeout"
	}
	return "other"
}
