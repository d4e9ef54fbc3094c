package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/content/fill"
)

// redisLocker makes content processes that share storage fetch each blob once: the process
// holding a digest's lock fills it, the others wait and then find it stored. The lock expires
// if its holder dies, and is refreshed while the fill runs.
type redisLocker struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

var _ fill.Locker = redisLocker{}

var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)
var refreshScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`)

// Lock waits until this process holds the fill lock of digest.
func (l redisLocker) Lock(ctx context.Context, digest string) (func(), error) {
	key := fillLockKey(digest)
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	delay := 10 * time.Millisecond
	for {
		// Each attempt is bounded: a Redis that hangs fails the fill (503) within
		// lockAttemptTimeout rather than holding the client for go-redis's retries.
		actx, cancel := context.WithTimeout(ctx, lockAttemptTimeout)
		ok, err := l.rdb.SetNX(actx, key, token, l.ttl).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("lock fill of %s: %w", digest, err)
		}
		if ok {
			break
		}
		if delay == 10*time.Millisecond {
			slog.Debug("waiting for another process's fill", "digest", digest)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				refreshScript.Run(context.Background(), l.rdb, []string{key}, token, l.ttl.Milliseconds())
			}
		}
	}()
	return func() {
		close(stop)
		unlockScript.Run(context.Background(), l.rdb, []string{key}, token)
	}, nil
}

// fillLockTTL is how long a fill lock outlives a holder that stopped refreshing it (a crashed
// process): short, so that a blob whose fill died is fetched again within seconds.
const fillLockTTL = 6 * time.Second

// lockAttemptTimeout bounds one attempt to take a fill lock.
const lockAttemptTimeout = 3 * time.Second

// fillLockKey is the Redis key of the fill lock of digest.
func fillLockKey(digest string) string { return "pulpgo:fill:" + digest }
