package upstream

import "sync"

// Counts is a snapshot of the upstream's request counters.
//
// Requests and CDNAuthorization count requests on arrival, before any fault
// switch. The others count only requests that got past SetDelay and SetDown:
// TooManyRequests and Unauthorized count those answers, and the per-route
// counters count requests that also got past the rate limit and the token
// check, that is, requests the upstream served (or tried to serve) from
// the registry.
type Counts struct {
	// Requests counts every request to the front and to the CDN.
	Requests int `json:"requests"`
	// TokenRequests counts requests to the front's /token endpoint.
	TokenRequests int `json:"token_requests"`
	// Unauthorized counts /v2 requests the front answered with 401.
	Unauthorized int `json:"unauthorized"`
	// TooManyRequests counts /v2 requests the front answered with 429.
	TooManyRequests int `json:"too_many_requests"`
	// Pings counts authorized GETs of /v2/.
	Pings int `json:"pings"`
	// ManifestHeads counts HEADs of /v2/<name>/manifests/<ref>.
	ManifestHeads int `json:"manifest_heads"`
	// ManifestGets counts GETs of /v2/<name>/manifests/<ref>.
	ManifestGets int `json:"manifest_gets"`
	// TagLists counts GETs of /v2/<name>/tags/list.
	TagLists int `json:"tag_lists"`
	// BlobHeads counts HEADs of /v2/<name>/blobs/<digest> at the front.
	BlobHeads int `json:"blob_heads"`
	// BlobGets counts GETs of /v2/<name>/blobs/<digest> at the front
	// (each answered with a redirect to the CDN when the blob exists).
	BlobGets int `json:"blob_gets"`
	// CDNGets counts blob GETs at the CDN with a valid signature.
	CDNGets int `json:"cdn_gets"`
	// CDNAuthorization counts CDN requests that carried an Authorization
	// header. A well-behaved client never sends one: it is a credential
	// leak to another origin.
	CDNAuthorization int `json:"cdn_authorization"`
}

// counters holds the live counts behind Counts; it is safe for concurrent use.
type counters struct {
	mu        sync.Mutex
	c         Counts
	blobGets  map[string]int      // front blob GETs per digest
	cdnGets   map[string]int      // CDN blob GETs per digest
	cdnRanges map[string][]string // Range headers of the CDN blob GETs per digest, "" for none
	inFlight  int                 // CDN blob GETs being answered now
	maxIn     int                 // the most inFlight has been since the last reset
}

func newCounters() *counters {
	return &counters{blobGets: map[string]int{}, cdnGets: map[string]int{}, cdnRanges: map[string][]string{}}
}

// add increments the counter that f selects.
func (k *counters) add(f func(c *Counts) *int) {
	k.mu.Lock()
	*f(&k.c)++
	k.mu.Unlock()
}

func (k *counters) addBlobGet(digest string) {
	k.mu.Lock()
	k.c.BlobGets++
	k.blobGets[digest]++
	k.mu.Unlock()
}

func (k *counters) addCDNGet(digest, rng string) {
	k.mu.Lock()
	k.c.CDNGets++
	k.cdnGets[digest]++
	k.cdnRanges[digest] = append(k.cdnRanges[digest], rng)
	k.mu.Unlock()
}

// cdnStart and cdnEnd bracket one CDN blob GET, for MaxCDNInFlight.
func (k *counters) cdnStart() {
	k.mu.Lock()
	k.inFlight++
	k.maxIn = max(k.maxIn, k.inFlight)
	k.mu.Unlock()
}

func (k *counters) cdnEnd() {
	k.mu.Lock()
	k.inFlight--
	k.mu.Unlock()
}

func (k *counters) snapshot() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

func (k *counters) blobGetsOf(digest string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.blobGets[digest]
}

func (k *counters) cdnGetsOf(digest string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cdnGets[digest]
}

func (k *counters) reset() {
	k.mu.Lock()
	k.c = Counts{}
	k.maxIn = k.inFlight
	clear(k.blobGets)
	clear(k.cdnGets)
	clear(k.cdnRanges)
	k.mu.Unlock()
}

// Counts returns a snapshot of the request counters.
func (u *Upstream) Counts() Counts { return u.counts.snapshot() }

// BlobGets returns how many GETs of the blob digest reached the front.
func (u *Upstream) BlobGets(digest string) int { return u.counts.blobGetsOf(digest) }

// MaxCDNInFlight returns the most blob GETs the CDN was answering at one moment since the
// last Reset: how many downloads a client ran at once.
func (u *Upstream) MaxCDNInFlight() int {
	u.counts.mu.Lock()
	defer u.counts.mu.Unlock()
	return u.counts.maxIn
}

// CDNGets returns how many GETs of the blob digest the CDN served.
func (u *Upstream) CDNGets(digest string) int { return u.counts.cdnGetsOf(digest) }

// CDNRanges returns the Range header of each CDN GET of the blob digest, in order ("" for a
// GET without one).
func (u *Upstream) CDNRanges(digest string) []string {
	u.counts.mu.Lock()
	defer u.counts.mu.Unlock()
	return append([]string(nil), u.counts.cdnRanges[digest]...)
}

// Reset sets every counter back to zero.
func (u *Upstream) Reset() { u.counts.reset() }
