package content

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestRedisLocker checks that a second process waits for the first one's lock of a digest,
// and that the lock of another digest is free meanwhile.
func TestRedisLocker(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := redis.NewClient(opt), redis.NewClient(opt)
	defer a.Close()
	defer b.Close()
	la, lb := redisLocker{rdb: a, ttl: 5 * time.Second}, redisLocker{rdb: b, ttl: 5 * time.Second}
	ctx := t.Context()
	unlock, err := la.Lock(ctx, "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	other, err := lb.Lock(ctx, "sha256:bb")
	if err != nil {
		t.Fatalf("lock of another digest: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		u, err := lb.Lock(ctx, "sha256:aa")
		if err == nil {
			u()
		}
		got <- err
	}()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := lb.Lock(short, "sha256:aa"); err == nil {
		t.Fatal("a second process took a held lock")
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting process never got the lock after it was released")
	}
}
