package upstream

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Budget is what an upstream last said about its pull budget (Docker Hub's RateLimit-Limit
// and RateLimit-Remaining, "<n>;w=<seconds>", on manifest answers), as one client saw it.
// The zero value means the upstream never said anything.
type Budget struct {
	// Limit is how many manifest GETs the window allows; 0 when unknown.
	Limit int
	// Remaining is how many are left, as last reported (less the GETs in flight since).
	Remaining int
	// Window is the rolling window the limit applies to; 0 when the upstream named none.
	Window time.Duration
	// ObservedAt is when the upstream last reported the budget or refused with 429.
	ObservedAt time.Time
	// SpentUntil is when a 429's Retry-After (or the window) ends; zero when not refused.
	SpentUntil time.Time
}

// Known reports whether the upstream has reported a budget that still applies at now: one
// older than its window (or than a minute, without a window) says nothing any more.
func (b Budget) Known(now time.Time) bool {
	if b.ObservedAt.IsZero() {
		return false
	}
	ttl := b.Window
	if ttl <= 0 {
		ttl = time.Minute
	}
	return now.Before(b.ObservedAt.Add(ttl)) || now.Before(b.SpentUntil)
}

// Spent reports whether no manifest GET is left at now.
func (b Budget) Spent(now time.Time) bool {
	if !b.Known(now) {
		return false
	}
	return now.Before(b.SpentUntil) || b.Remaining <= 0
}

// Low reports whether at most the fraction low of the limit is left at now (or nothing is).
func (b Budget) Low(now time.Time, low float64) bool {
	if b.Spent(now) {
		return true
	}
	if !b.Known(now) || b.Limit <= 0 {
		return false
	}
	return float64(b.Remaining) <= math.Max(low, 0)*float64(b.Limit)
}

// budgetTracker holds a client's Budget and the manifest GETs it has let go since the last
// report, and tells its watcher when the state changes.
type budgetTracker struct {
	mu       sync.Mutex
	b        Budget
	inflight int
	lastSent time.Time // when the request of the report in b was sent
	watch    func(Budget)
}

// snapshot is the budget with the GETs in flight already taken off.
func (t *budgetTracker) snapshot() Budget {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	b.Remaining -= t.inflight
	return b
}

// observe records the RateLimit headers of an answer to a request sent at sent and, for a
// 429 with a Retry-After, the refusal until then. Answers without (well-formed) headers
// change nothing: a bare 429 from a registry that does not speak of budgets is a passing
// throttle, handled as a failure of that one request. A report of a request sent before the
// one already recorded is older news (it may not count GETs answered since) and is ignored,
// unless it is a refusal.
func (t *budgetTracker) observe(h http.Header, status int, sent, now time.Time) {
	limit, lw, lok := parseRateLimit(h.Get("RateLimit-Limit"))
	remaining, rw, rok := parseRateLimit(h.Get("RateLimit-Remaining"))
	retry, rerr := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	refused := status == http.StatusTooManyRequests && (rok || (rerr == nil && retry >= 0))
	if !rok && !refused {
		return
	}
	t.mu.Lock()
	if !refused && sent.Before(t.lastSent) {
		t.mu.Unlock()
		return
	}
	t.lastSent = sent
	b := t.b
	if rok {
		b.Remaining = remaining
		if lok {
			b.Limit = limit
		}
		if w := max(lw, rw); w > 0 {
			b.Window = time.Duration(w) * time.Second
		}
		b.ObservedAt = now
		if remaining > 0 {
			b.SpentUntil = time.Time{}
		}
	}
	if refused {
		b.Remaining, b.ObservedAt = 0, now
		if rerr == nil && retry >= 0 {
			b.SpentUntil = now.Add(capRetryAfter(retry, b.Window))
		}
	}
	t.b = b
	watch := t.watch
	t.mu.Unlock()
	if watch != nil {
		watch(b)
	}
}

// reserve takes one manifest GET from the budget when more than the fraction keep of the
// limit would be left (keep 0: any GET left), counting the GETs already in flight.
func (t *budgetTracker) reserve(keep float64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	b.Remaining -= t.inflight
	if b.Spent(now) || (keep > 0 && b.Low(now, keep)) {
		return false
	}
	t.inflight++
	return true
}

// release returns a GET taken by reserve once its answer (and its headers) came back.
func (t *budgetTracker) release() {
	t.mu.Lock()
	if t.inflight > 0 {
		t.inflight--
	}
	t.mu.Unlock()
}

// parseRateLimit parses "<n>" or "<n>;w=<seconds>" (other parameters ignored). ok is false
// for an absent or malformed value.
func parseRateLimit(v string) (n, window int, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, 0, false
	}
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 0 {
		return 0, 0, false
	}
	for _, p := range parts[1:] {
		k, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || strings.TrimSpace(k) != "w" {
			continue
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return 0, 0, false
		}
		window = w
	}
	return n, window, true
}

// Budget returns what the upstream last said about the client's pull budget, less the
// manifest GETs in flight; the zero Budget when it never said anything.
func (c *Client) Budget() Budget { return c.budget.snapshot() }

// ReserveManifestGet takes one manifest GET from the pull budget when the upstream's last
// word leaves more than the fraction keep of its limit (keep 0: at least one GET), so that
// concurrent callers do not together spend what one of them saw. It always succeeds when the
// upstream never reported a budget, or its report is older than its window. Call release when
// the GET is done.
func (c *Client) ReserveManifestGet(keep float64) (release func(), ok bool) {
	if !c.budget.reserve(keep, c.now()) {
		return nil, false
	}
	return c.budget.release, true
}

// WatchBudget sets the function called with the new Budget after each answer that reported
// one (or a 429). It is called outside the client's locks; set it before sharing the client.
func (c *Client) WatchBudget(fn func(Budget)) {
	c.budget.mu.Lock()
	c.budget.watch = fn
	c.budget.mu.Unlock()
}

// maxRetryAfter bounds the refusal an upstream's Retry-After sets, beyond its budget window: a
// hostile or broken upstream must not stop the cache's GETs until a restart (nor overflow
// the duration).
const maxRetryAfter = time.Hour

// capRetryAfter is retry seconds, at most the longer of window and maxRetryAfter.
func capRetryAfter(retry int, window time.Duration) time.Duration {
	limit := max(window, maxRetryAfter)
	if int64(retry) >= int64(limit/time.Second) {
		return limit
	}
	return time.Duration(retry) * time.Second
}
