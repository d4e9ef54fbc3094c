package pullthrough

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
)

// budgetHub is a hostile upstream registry for the pull-budget tests: Docker Hub's
// RateLimit-Limit and RateLimit-Remaining ("<n>;w=<seconds>") on manifest HEADs and GETs,
// where only GETs count, over a rolling window (or a fixed remaining the test sets), 429 with
// Retry-After for a GET past the budget, and tags that move to a new manifest (with its own
// config and layer) every move, or when the test says. down makes it answer 500 to
// everything. It counts what it was asked.
type budgetHub struct {
	srv    *httptest.Server
	limit  int
	window time.Duration
	move   time.Duration // 0: tags move only with bump
	start  time.Time

	mu        sync.Mutex
	fixed     int         // >= 0: the remaining budget, set by the test (no window)
	gets      []time.Time // accepted manifest GETs, for the rolling window
	bumps     map[string]int
	frozen    map[string]int // tags whose epoch no longer moves
	down      bool
	content   map[string][]byte // manifests and blobs served, by digest
	epochs    map[string]int    // manifest digest → epoch
	inflight  map[string]int    // manifest requests in progress, by tag
	maxFlight int
	heads     int
	getsAll   int // manifest GETs, refused ones included
	refused   int // manifest GETs answered 429
	requests  int
}

func newBudgetHub(t *testing.T, limit int, window, move time.Duration) *budgetHub {
	h := &budgetHub{limit: limit, window: window, move: move, start: time.Now(), fixed: -1,
		bumps: map[string]int{}, frozen: map[string]int{}, content: map[string][]byte{},
		epochs: map[string]int{}, inflight: map[string]int{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

// epoch is the version of tag now; h.mu held.
func (h *budgetHub) epoch(tag string) int {
	if e, ok := h.frozen[tag]; ok {
		return e
	}
	e := h.bumps[tag]
	if h.move > 0 {
		e += int(time.Since(h.start) / h.move)
	}
	return e
}

// freeze stops every tag where it is now.
func (h *budgetHub) freeze(tags []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tag := range tags {
		h.frozen[tag] = h.epoch(tag)
	}
}

// manifest builds tag's manifest of epoch e (and its blobs); h.mu held.
func (h *budgetHub) manifest(tag string, e int) (string, []byte) {
	layer := []byte(fmt.Sprintf("layer of %s at %d", tag, e))
	config := []byte(fmt.Sprintf(`{"tag":%q,"epoch":%d}`, tag, e))
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		oci.MediaTypeOCIManifest, oci.Digest(config), len(config), oci.Digest(layer), len(layer)))
	d := oci.Digest(raw)
	h.content[d], h.content[oci.Digest(config)], h.content[oci.Digest(layer)] = raw, config, layer
	h.epochs[d] = e
	return d, raw
}

// current is the digest tag points to now.
func (h *budgetHub) current(tag string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, _ := h.manifest(tag, h.epoch(tag))
	return d
}

// remaining is the budget left now; h.mu held.
func (h *budgetHub) remaining(now time.Time) int {
	if h.fixed >= 0 {
		return h.fixed
	}
	keep := h.gets[:0]
	for _, g := range h.gets {
		if now.Sub(g) < h.window {
			keep = append(keep, g)
		}
	}
	h.gets = keep
	return h.limit - len(h.gets)
}

func (h *budgetHub) setRemaining(n int) {
	h.mu.Lock()
	h.fixed = n
	h.mu.Unlock()
}

func (h *budgetHub) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// counts returns the manifest HEADs, GETs (refused included), 429s and all requests.
func (h *budgetHub) counts() (heads, gets, refused, requests int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heads, h.getsAll, h.refused, h.requests
}

func (h *budgetHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	down := h.down
	h.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/v2/" {
		return
	}
	i := strings.LastIndex(r.URL.Path, "/")
	ref, rest := r.URL.Path[i+1:], r.URL.Path[:i]
	switch {
	case strings.HasSuffix(rest, "/manifests"):
		h.serveManifest(w, r, ref)
	case strings.HasSuffix(rest, "/blobs"):
		h.mu.Lock()
		b, ok := h.content[ref]
		h.mu.Unlock()
		serveTestObject(w, r, ref, b, ok, "")
	default:
		http.NotFound(w, r)
	}
}

func (h *budgetHub) serveManifest(w http.ResponseWriter, r *http.Request, ref string) {
	if !oci.IsDigest(ref) {
		// Requests for one tag that overlap (with a little upstream latency) are counted.
		h.mu.Lock()
		h.inflight[ref]++
		h.maxFlight = max(h.maxFlight, h.inflight[ref])
		h.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		defer func() { h.mu.Lock(); h.inflight[ref]--; h.mu.Unlock() }()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	left := h.remaining(now)
	var d string
	var raw []byte
	if oci.IsDigest(ref) {
		d, raw = ref, h.content[ref]
	} else {
		d, raw = h.manifest(ref, h.epoch(ref))
	}
	w.Header().Set("RateLimit-Limit", fmt.Sprintf("%d;w=%d", h.limit, int(h.window/time.Second)))
	if r.Method == http.MethodHead {
		h.heads++
	} else {
		h.getsAll++
		if left <= 0 {
			h.refused++
			retry := h.window
			if h.fixed < 0 && len(h.gets) > 0 {
				retry = h.gets[0].Add(h.window).Sub(now)
			}
			w.Header().Set("RateLimit-Remaining", fmt.Sprintf("0;w=%d", int(h.window/time.Second)))
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"pull limit"}]}`, http.StatusTooManyRequests)
			return
		}
		if h.fixed > 0 {
			h.fixed--
		} else {
			h.gets = append(h.gets, now)
		}
		left--
	}
	w.Header().Set("RateLimit-Remaining", fmt.Sprintf("%d;w=%d", left, int(h.window/time.Second)))
	serveTestObject(w, r, d, raw, raw != nil, oci.MediaTypeOCIManifest)
}
