package testenv

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// redisCounterKey, in database 0, counts the databases handed out so far, so that parallel
// test processes sharing one server take different ones.
const redisCounterKey = "pulpgo:test:next-db"

// RedisURL picks a Redis database on the server named by PULPGO_TEST_REDIS_URL that no other
// test process is using, empties it, and returns its URL (redis://host:port/<index>). The
// database is emptied again when t and its subtests have finished. Database 0 holds the shared
// counter and is never handed out; indexes wrap around after the server's database count
// minus one, so a long-lived server can reuse an index after about a thousand tests. It fails t
// when the variable is unset or the server cannot be reached.
func RedisURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(RedisURLEnv)
	if admin == "" {
		t.Fatal(RedisURLEnv + " is not set: run the tests with make test")
		return ""
	}
	opts, err := redis.ParseURL(admin)
	if err != nil {
		t.Fatalf("%s=%q: %v", RedisURLEnv, admin, err)
		return ""
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s=%q: %v", RedisURLEnv, admin, err)
		return ""
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	opts.DB = 0
	c := redis.NewClient(opts)
	defer c.Close()

	count := 16 // Redis's default when CONFIG GET is not allowed
	if cfg, err := c.ConfigGet(ctx, "databases").Result(); err == nil {
		if n, err := strconv.Atoi(cfg["databases"]); err == nil {
			count = n
		}
	}
	if count < 2 {
		t.Fatalf("Redis at %s has %d database(s); tests need at least 2 (start it with scripts/start-redis.sh)", admin, count)
		return ""
	}
	n, err := c.Incr(ctx, redisCounterKey).Result()
	if err != nil {
		t.Fatalf("Redis at %s: INCR %s: %v", admin, redisCounterKey, err)
		return ""
	}
	index := 1 + int((n-1)%int64(count-1))

	flush := func(ctx context.Context) error {
		o := *opts
		o.DB = index
		c := redis.NewClient(&o)
		defer c.Close()
		return c.FlushDB(ctx).Err()
	}
	if err := flush(ctx); err != nil {
		t.Fatalf("Redis at %s: FLUSHDB %d: %v", admin, index, err)
		return ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := flush(ctx); err != nil {
			t.Errorf("Redis at %s: FLUSHDB %d: %v", admin, index, err)
		}
	})

	u.Path = "/" + strconv.Itoa(index)
	u.RawPath = ""
	return u.String()
}
