package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrBreakerOpen is the cause of a request refused without being sent because the circuit
// breaker of its upstream host is open.
var ErrBreakerOpen = errors.New("upstream circuit breaker open")

// The states of a circuit breaker.
const (
	BreakerClosed   = "closed"    // requests go upstream
	BreakerOpen     = "open"      // requests fail at once until RetryAt
	BreakerHalfOpen = "half_open" // one probe is upstream; the others fail at once
)

// BreakerStatus is the state of one upstream host's circuit breaker.
type BreakerStatus struct {
	State               string
	ConsecutiveFailures int
	// OpenedAt is when the breaker last opened; RetryAt when it lets a probe through. Both are
	// zero while it is closed.
	OpenedAt, RetryAt time.Time
}

// Breakers are the circuit breakers of upstream hosts, one per host, shared by every client
// given them (Config.Breakers): after Failures consecutive failures (no answer, a timeout, a
// 502, 503 or 504) a host's breaker opens for Cooldown, then lets one probe through; a success
// closes it, a failure opens it again. Answers such as 404, 401, 429 or 500 are not failures.
type Breakers struct {
	failures int
	cooldown time.Duration
	now      func() time.Time

	mu    sync.Mutex
	hosts map[string]*breaker
	watch func(host string, st BreakerStatus)
}

// Default settings of NewBreakers.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// NewBreakers returns the breakers of a process; failures and cooldown at most 0 take the
// defaults.
func NewBreakers(failures int, cooldown time.Duration) *Breakers {
	if failures <= 0 {
		failures = DefaultBreakerFailures
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	return &Breakers{failures: failures, cooldown: cooldown, now: time.Now, hosts: map[string]*breaker{}}
}

// Watch sets the function called (outside the breakers' locks) when a breaker changes state.
func (bs *Breakers) Watch(fn func(host string, st BreakerStatus)) {
	bs.mu.Lock()
	bs.watch = fn
	bs.mu.Unlock()
}

// Status returns the state of host's breaker (closed for a host never seen).
func (bs *Breakers) Status(host string) BreakerStatus {
	b := bs.of(host)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// of returns host's breaker, creating it closed.
func (bs *Breakers) of(host string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, ok := bs.hosts[host]
	if !ok {
		b = &breaker{bs: bs, host: host, st: BreakerStatus{State: BreakerClosed}}
		bs.hosts[host] = b
	}
	return b
}

// breaker is one host's circuit breaker.
type breaker struct {
	bs   *Breakers
	host string

	mu      sync.Mutex
	st      BreakerStatus
	probing bool // the half-open probe is upstream
}

// allow reports whether a request may go upstream now (the caller then reports its outcome
// with done), or when the breaker lets the next probe through.
func (b *breaker) allow() (ok bool, retryAt time.Time) {
	b.mu.Lock()
	switch b.st.State {
	case BreakerClosed:
		b.mu.Unlock()
		return true, time.Time{}
	case BreakerOpen:
		if retryAt := b.st.RetryAt; b.bs.now().Before(retryAt) {
			b.mu.Unlock()
			return false, retryAt
		}
		b.st.State, b.probing = BreakerHalfOpen, true
		st := b.st
		b.mu.Unlock()
		b.notify(st)
		return true, time.Time{}
	default: // half open: the probe decides
		if retryAt := b.st.RetryAt; b.probing {
			b.mu.Unlock()
			return false, retryAt
		}
		b.probing = true
		b.mu.Unlock()
		return true, time.Time{}
	}
}

// outcome is what one request told about its host.
type outcome int

const (
	neutral outcome = iota // the caller gave up: says nothing
	success
	failure
)

// done records the outcome of a request that allow let through.
func (b *breaker) done(o outcome) {
	b.mu.Lock()
	before := b.st.State
	wasProbe := b.probing && before == BreakerHalfOpen
	switch o {
	case neutral:
		if wasProbe {
			b.probing = false
		}
		b.mu.Unlock()
		return
	case success:
		b.st = BreakerStatus{State: BreakerClosed}
		b.probing = false
	case failure:
		b.st.ConsecutiveFailures++
		if wasProbe || (before == BreakerClosed && b.st.ConsecutiveFailures >= b.bs.failures) {
			now := b.bs.now()
			b.st.State, b.st.OpenedAt, b.st.RetryAt = BreakerOpen, now, now.Add(b.bs.cooldown)
			b.probing = false
		}
	}
	st := b.st
	b.mu.Unlock()
	if st.State != before {
		b.notify(st)
	}
}

func (b *breaker) notify(st BreakerStatus) {
	b.bs.mu.Lock()
	watch := b.bs.watch
	b.bs.mu.Unlock()
	if watch != nil {
		watch(b.host, st)
	}
}

// judge classifies the result of one request to the registry for its host's breaker: no
// answer (other than the caller's own cancellation), a timeout, or a 502, 503 or 504 (what a
// registry that is down or overloaded, or its gateway, answers) is a failure; any other answer
// a success. A 500 is a success here: it is an answer, often to one request only (a name
// that upsets the upstream), and counting it would let any client that finds such a request
// open the host's breaker for everyone.
func judge(ctx context.Context, resp *http.Response, err error) outcome {
	if err != nil {
		if errors.Is(err, ErrBreakerOpen) || (errors.Is(err, context.Canceled) && context.Cause(ctx) == context.Canceled) {
			return neutral
		}
		var e *Error
		if errors.As(err, &e) && e.StatusCode != 0 {
			if unavailableStatus(e.StatusCode) {
				return failure
			}
			return success
		}
		if IsUnavailable(err) {
			return failure
		}
		return neutral
	}
	if unavailableStatus(resp.StatusCode) {
		return failure
	}
	return success
}

// unavailableStatus reports whether an HTTP status says the registry is unavailable rather
// than that it refused one request: 502, 503 and 504.
func unavailableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// BreakerStatus returns the state of the breaker of the client's upstream host (closed when
// the client has no breakers).
func (c *Client) BreakerStatus() BreakerStatus {
	if c.breaker == nil {
		return BreakerStatus{State: BreakerClosed}
	}
	b := c.breaker
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// Host is the upstream registry's host (and port), which keys its circuit breaker.
func (c *Client) Host() string { return c.base.Host }
