package upstream

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// PullBudget is a Docker Hub-like pull rate limit: at most Limit manifest
// GETs in any rolling Window. The zero value (Limit 0) means no limit.
//
// As on Docker Hub, every manifest GET and HEAD answer carries
// "RateLimit-Limit: <Limit>;w=<Window seconds>" and
// "RateLimit-Remaining: <left>;w=<Window seconds>"; a GET spends one unit for
// Window, a HEAD spends nothing and is never refused; a GET with no unit
// left is answered 429 TOOMANYREQUESTS with Retry-After (the seconds until
// the oldest spent unit comes back). There is one budget for the whole
// upstream: Docker Hub counts anonymous pulls per client address, and every
// client here is 127.0.0.1.
type PullBudget struct {
	Limit  int
	Window time.Duration
}

// budget is the live state of a PullBudget; safe for concurrent use.
type budget struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	spent []time.Time // when each unit still out was spent, oldest first
}

func newBudget(b PullBudget) *budget {
	if b.Limit <= 0 {
		return nil
	}
	if b.Window <= 0 {
		b.Window = 6 * time.Hour // Docker Hub's 21600 s
	}
	return &budget{limit: b.Limit, window: b.Window}
}

// expire drops the units spent a window or more before now; mu is held.
func (b *budget) expire(now time.Time) {
	i := 0
	for i < len(b.spent) && !now.Before(b.spent[i].Add(b.window)) {
		i++
	}
	b.spent = b.spent[i:]
}

// spend takes one unit at now. It reports the units left after it and,
// when none was left, false and how long until one comes back.
func (b *budget) spend(now time.Time) (left int, ok bool, retry time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if len(b.spent) >= b.limit {
		return 0, false, b.spent[0].Add(b.window).Sub(now)
	}
	b.spent = append(b.spent, now)
	return b.limit - len(b.spent), true, 0
}

// remaining returns the units left at now without spending one.
func (b *budget) remaining(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	return b.limit - len(b.spent)
}

// refill gives back every spent unit.
func (b *budget) refill() {
	b.mu.Lock()
	b.spent = nil
	b.mu.Unlock()
}

// setHeaders writes Docker Hub's RateLimit-Limit and RateLimit-Remaining.
func (b *budget) setHeaders(h http.Header, left int) {
	w := ";w=" + strconv.FormatInt(int64(b.window/time.Second), 10)
	h.Set("RateLimit-Limit", strconv.Itoa(b.limit)+w)
	h.Set("RateLimit-Remaining", strconv.Itoa(left)+w)
}

// admitManifest applies the pull budget to a manifest request: a HEAD gets
// the headers and passes, a GET spends a unit and passes, or is answered
// 429 (counted in TooManyRequests) and does not. It reports whether the
// request may be served.
func (u *Upstream) admitManifest(w http.ResponseWriter, head bool, now time.Time) bool {
	b := u.budget
	if b == nil {
		return true
	}
	if head {
		b.setHeaders(w.Header(), b.remaining(now))
		return true
	}
	left, ok, retry := b.spend(now)
	b.setHeaders(w.Header(), left)
	if ok {
		return true
	}
	u.counts.add(func(c *Counts) *int { return &c.TooManyRequests })
	w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", tooManyMessage)
	return false
}

// tooManyMessage is Docker Hub's message for a spent pull budget.
const tooManyMessage = "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"

// BudgetRemaining returns the manifest GETs the pull budget allows now, or
// -1 when the upstream has no budget.
func (u *Upstream) BudgetRemaining() int {
	if u.budget == nil {
		return -1
	}
	return u.budget.remaining(time.Now())
}

// RefillBudget gives back every unit of the pull budget spent so far, as if
// a whole window had passed.
func (u *Upstream) RefillBudget() {
	if u.budget != nil {
		u.budget.refill()
	}
}
