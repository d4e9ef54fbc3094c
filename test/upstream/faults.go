package upstream

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// faults holds the run-time fault switches; it is safe for concurrent use.
type faults struct {
	down     atomic.Bool
	tooMany  atomic.Bool
	corrupt  atomic.Bool
	delay    atomic.Int64 // time.Duration
	throttle atomic.Int64 // bytes per second, 0 = unthrottled
	retry    atomic.Int64 // Retry-After of 429 answers, in seconds; 0 = none
	cutAfter atomic.Int64 // SetCutBlobs: bytes sent before the cut
	cuts     atomic.Int64 // SetCutBlobs: CDN bodies still to cut
}

// SetCutBlobs makes the CDN cut the connection of the next n blob bodies it sends once it
// has sent after bytes of each (n = 0 stops it), as a connection broken mid-blob would.
// The bytes before the cut are flushed, so the client gets exactly after bytes of each.
func (u *Upstream) SetCutBlobs(after int64, n int) {
	u.faults.cutAfter.Store(after)
	u.faults.cuts.Store(int64(n))
}

// takeCut reports whether the body about to be sent is to be cut, and after how many bytes.
func (f *faults) takeCut() (int64, bool) {
	for {
		n := f.cuts.Load()
		if n <= 0 {
			return 0, false
		}
		if f.cuts.CompareAndSwap(n, n-1) {
			return f.cutAfter.Load(), true
		}
	}
}

// SetDown makes every front and CDN request fail (true) or work again
// (false). A request to a down upstream gets no response at all: the server
// closes the connection, as a crashed or unreachable host would. A CDN body
// that is being sent when the upstream goes down is cut off mid-stream.
func (u *Upstream) SetDown(down bool) { u.faults.down.Store(down) }

// SetTooManyRequests makes every /v2 request at the front answer 429 with a
// TOOMANYREQUESTS error, like Docker Hub's pull rate limit. /token and the
// CDN keep working.
func (u *Upstream) SetTooManyRequests(on bool) { u.faults.tooMany.Store(on) }

// SetRetryAfter makes the 429 answers of SetTooManyRequests carry
// Retry-After: d (whole seconds; 0 = no header, the default).
func (u *Upstream) SetRetryAfter(d time.Duration) { u.faults.retry.Store(int64(d / time.Second)) }

// SetCorrupt makes the CDN flip the first byte of every blob body it sends.
// The length stays the same, so only a client that checks digests notices.
func (u *Upstream) SetCorrupt(on bool) { u.faults.corrupt.Store(on) }

// SetDelay makes every front and CDN request wait d before it is answered
// (0 = no delay). The wait ends early when the client goes away.
func (u *Upstream) SetDelay(d time.Duration) { u.faults.delay.Store(int64(d)) }

// SetBlobThrottle limits every CDN body to bytesPerSecond (0 = unthrottled).
// Bodies being sent pick up a new rate as they go.
func (u *Upstream) SetBlobThrottle(bytesPerSecond int64) {
	u.faults.throttle.Store(max(bytesPerSecond, 0))
}

// wait applies the delay switch; it reports false if ctx ended first.
func (f *faults) wait(ctx context.Context) bool {
	d := time.Duration(f.delay.Load())
	if d <= 0 {
		return true
	}
	return sleep(ctx, d)
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropConnection closes the client's connection without a response.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // the server closes the connection
}

// faultMiddleware counts each request, then applies the delay and down
// switches before next sees it.
func (u *Upstream) faultMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.counts.add(func(c *Counts) *int { return &c.Requests })
		if !u.faults.wait(r.Context()) {
			return
		}
		if u.faults.down.Load() {
			dropConnection(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}
