// Package inuse tracks which stored blobs are being read at this moment, by a client or by a
// fill, across every process that shares one Redis, so that an orphan cleanup never deletes
// the bytes of a blob while they are served.
//
// A process counts its own readers of each digest. When a digest's count leaves zero, the
// process writes its token into the Redis hash pulpgo:inuse:<digest> with an expiry time, and
// refreshes it every third of the TTL while the count stays above zero; when the count goes
// back to zero it removes its token. A digest is held while any token's expiry lies in the
// future, so a process that dies holding a digest releases it after the TTL. Without Redis
// (unit tests) only this process's readers count.
package inuse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long a hold outlives a process that stopped refreshing it.
const DefaultTTL = 30 * time.Second

// writeBudget bounds the Redis write of a hold on the request's path.
const writeBudget = 500 * time.Millisecond

// touchEvery is how often one digest's first reader calls the touch function.
const touchEvery = time.Minute

// Tracker holds digests for the readers of this process and answers which digests any
// process holds.
type Tracker struct {
	rdb   redis.UniversalClient
	token string
	ttl   time.Duration
	log   *slog.Logger
	touch func(digest string)

	mu     sync.Mutex
	counts map[string]int
	leases map[string]lease // this process's leases
	// redisDownUntil is when the tracker writes to Redis again after a failed write (zero:
	// Redis answered last).
	redisDownUntil time.Time
	touched        map[string]time.Time
	stop           chan struct{}
	done           chan struct{}
}

// Option configures a Tracker.
type Option func(*Tracker)

// WithTouch makes the first reader of a digest call touch(digest) in the background, at most
// once a minute per digest: the content app marks the content it serves as used.
func WithTouch(touch func(digest string)) Option { return func(t *Tracker) { t.touch = touch } }

// WithTTL sets how long a hold outlives a process that stopped refreshing it.
func WithTTL(ttl time.Duration) Option { return func(t *Tracker) { t.ttl = ttl } }

// New returns a Tracker over rdb (nil: this process only). Close stops its refresher.
func New(rdb redis.UniversalClient, logger *slog.Logger, opts ...Option) *Tracker {
	if logger == nil {
		logger = slog.Default()
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	t := &Tracker{rdb: rdb, token: hex.EncodeToString(b[:]), ttl: DefaultTTL, log: logger,
		counts: map[string]int{}, leases: map[string]lease{}, touched: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(t)
	}
	go t.refresh()
	return t
}

func key(digest string) string { return "pulpgo:inuse:" + digest }

// Hold marks digest as being read until the returned function is called. A Redis failure is
// logged and the read goes on: this process still counts it.
func (t *Tracker) Hold(ctx context.Context, digest string) (release func()) {
	t.mu.Lock()
	t.counts[digest]++
	first := t.counts[digest] == 1
	touch := first && t.touch != nil && time.Since(t.touched[digest]) >= touchEvery
	if touch {
		t.touched[digest] = time.Now()
	}
	t.mu.Unlock()
	if first && t.redisUsable() {
		// A Redis that does not answer delays the read by at most writeBudget, once per
		// redisBackoff.
		wctx, cancel := context.WithTimeout(ctx, writeBudget)
		err := t.write(wctx, digest)
		cancel()
		t.redisResult("marking a blob in use", digest, err)
	}
	if touch {
		go t.touch(digest)
	}
	var once sync.Once
	return func() { once.Do(func() { t.release(digest) }) }
}

// write records this process's hold of digest in Redis, expiring after the TTL.
func (t *Tracker) write(ctx context.Context, digest string) error {
	return t.writeField(ctx, digest, t.token, t.ttl)
}

// holdScript sets field ARGV[1] of hash KEYS[1] to the expiry ARGV[2] (Unix ms) and makes the
// key live at least ARGV[3] ms, never shortening it (a lease may outlive the holds).
var holdScript = redis.NewScript(`redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
if redis.call("pttl", KEYS[1]) < tonumber(ARGV[3]) then redis.call("pexpire", KEYS[1], ARGV[3]) end
return 1`)

func (t *Tracker) writeField(ctx context.Context, digest, field string, ttl time.Duration) error {
	expiry := time.Now().Add(ttl).UnixMilli()
	return holdScript.Run(ctx, t.rdb, []string{key(digest)}, field, expiry, ttl.Milliseconds()).Err()
}

// Lease holds digest for d without a reader: a blob GET answered with a redirect to a
// presigned storage URL, which the client reads from the storage within the URL's lifetime.
// Like Hold, a Redis failure is logged and this process still counts the lease.
func (t *Tracker) Lease(ctx context.Context, digest string, d time.Duration) {
	now := time.Now()
	until := now.Add(d)
	t.mu.Lock()
	l := t.leases[digest]
	// One Redis write per digest per half lease and process: a client asking for the same
	// redirect in a loop costs Redis nothing more (and each process has one field per key).
	write := l.written.IsZero() || now.Sub(l.written) >= d/2
	if until.After(l.until) {
		l.until = until
	}
	t.leases[digest] = l
	t.mu.Unlock()
	if !write || !t.redisUsable() {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, writeBudget)
	defer cancel()
	err := t.writeField(wctx, digest, "lease:"+t.token, d)
	t.redisResult("leasing a blob", digest, err)
	if err == nil {
		t.mu.Lock()
		l := t.leases[digest]
		l.written = now
		t.leases[digest] = l
		t.mu.Unlock()
	}
}

// lease is this process's lease of a digest: until when it holds, and when it was last
// written to Redis (zero: not yet).
type lease struct{ until, written time.Time }

// redisBackoff is how long a tracker leaves Redis alone after a failed write: during a Redis
// outage a read is not delayed by a write budget at its start and at its end, and the log gets
// one line per backoff rather than one per read. The holds count in this process meanwhile;
// other processes cannot ask Redis either, so no orphan cleanup or eviction runs on them.
const redisBackoff = 5 * time.Second

// redisUsable reports whether the tracker writes to Redis now: it has one, and no write
// failed within the last redisBackoff.
func (t *Tracker) redisUsable() bool {
	if t.rdb == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !time.Now().Before(t.redisDownUntil)
}

// redisResult notes the outcome of a Redis write: a failure starts a backoff (logged when it
// starts), a success ends it.
func (t *Tracker) redisResult(what, digest string, err error) {
	t.mu.Lock()
	wasDown := !t.redisDownUntil.IsZero()
	if err == nil {
		t.redisDownUntil = time.Time{}
	} else {
		t.redisDownUntil = time.Now().Add(redisBackoff)
	}
	t.mu.Unlock()
	switch {
	case err != nil && !wasDown:
		t.log.Warn(what+"; holds count in this process only until Redis answers", "digest", digest, "err", err, "retry_in", redisBackoff)
	case err == nil && wasDown:
		t.log.Info("Redis answers again; blobs in use are shared again")
	}
}

func (t *Tracker) release(digest string) {
	t.mu.Lock()
	t.counts[digest]--
	last := t.counts[digest] == 0
	if last {
		delete(t.counts, digest)
	}
	t.mu.Unlock()
	if last && t.redisUsable() {
		// Released on its own context: a client that went away still ends its hold. A Redis
		// that does not answer delays the end of the read by at most writeBudget too: a hold
		// left behind only keeps the blob until its TTL passes.
		ctx, cancel := context.WithTimeout(context.Background(), writeBudget)
		defer cancel()
		t.redisResult("releasing a blob in use", digest, t.rdb.HDel(ctx, key(digest), t.token).Err())
	}
}

// refresh renews this process's holds every third of the TTL and forgets old touch times.
func (t *Tracker) refresh() {
	defer close(t.done)
	tick := time.NewTicker(t.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		held := make([]string, 0, len(t.counts))
		for d := range t.counts {
			held = append(held, d)
		}
		for d, at := range t.touched {
			if time.Since(at) >= touchEvery {
				delete(t.touched, d)
			}
		}
		for d, l := range t.leases {
			if time.Now().After(l.until) {
				delete(t.leases, d)
			}
		}
		t.mu.Unlock()
		if t.rdb == nil {
			continue
		}
		// The refresher writes even while Redis is left alone: it is what notices that Redis
		// is back, and it writes again the holds that could not be written meanwhile.
		for _, d := range held {
			wctx, cancel := context.WithTimeout(context.Background(), writeBudget)
			err := t.write(wctx, d)
			cancel()
			t.redisResult("refreshing a blob in use", d, err)
			if err != nil {
				break
			}
		}
	}
}

// Held returns the digests of digests that some process is reading at this moment.
func (t *Tracker) Held(ctx context.Context, digests []string) (map[string]bool, error) {
	out := map[string]bool{}
	t.mu.Lock()
	for _, d := range digests {
		if t.counts[d] > 0 || time.Now().Before(t.leases[d].until) {
			out[d] = true
		}
	}
	t.mu.Unlock()
	if t.rdb == nil || len(digests) == 0 {
		return out, nil
	}
	now := time.Now().UnixMilli()
	cmds := make([]*redis.MapStringStringCmd, len(digests))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range digests {
			cmds[i] = p.HGetAll(ctx, key(d))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, d := range digests {
		for _, v := range cmds[i].Val() {
			if exp, err := strconv.ParseInt(v, 10, 64); err == nil && exp > now {
				out[d] = true
			}
		}
	}
	return out, nil
}

// Close stops the refresher; holds not released expire after the TTL.
func (t *Tracker) Close() {
	close(t.stop)
	<-t.done
}
