package inuse_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/tasks"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// redisOf returns a client of the engine's Redis (in process for the embedded engine).
func redisOf(t *testing.T, e testenv.Engine) redis.UniversalClient {
	t.Helper()
	u := e.RedisURL
	if u == "" {
		emb, err := tasks.StartEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emb.Close)
		u = emb.URL()
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func held(t *testing.T, tr *inuse.Tracker, d string) bool {
	t.Helper()
	m, err := tr.Held(context.Background(), []string{d, "sha256:other"})
	if err != nil {
		t.Fatal(err)
	}
	if m["sha256:other"] {
		t.Fatal("a digest nobody holds is held")
	}
	return m[d]
}

// TestHoldsAcrossProcesses: what one tracker holds, another tracker on the same Redis sees,
// until the last reader releases it or the holder stops refreshing it.
func TestHoldsAcrossProcesses(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		rdb := redisOf(t, e)
		reader := inuse.New(rdb, nil)
		defer reader.Close()
		cleaner := inuse.New(rdb, nil)
		defer cleaner.Close()
		const d = "sha256:aaaa"
		if held(t, cleaner, d) {
			t.Fatal("held before any reader")
		}
		r1 := reader.Hold(context.Background(), d)
		r2 := reader.Hold(context.Background(), d)
		if !held(t, cleaner, d) || !held(t, reader, d) {
			t.Fatal("a digest being read is not held")
		}
		r1()
		r1() // releasing twice counts once
		if !held(t, cleaner, d) {
			t.Fatal("released while a second reader still reads")
		}
		r2()
		if held(t, cleaner, d) {
			t.Fatal("still held after the last reader")
		}

		// A process that dies holding a digest stops refreshing it: the hold expires.
		dying := inuse.New(rdb, nil, inuse.WithTTL(300*time.Millisecond))
		_ = dying.Hold(context.Background(), d)
		dying.Close()
		if !held(t, cleaner, d) {
			t.Fatal("not held right after the hold")
		}
		deadline := time.Now().Add(10 * time.Second)
		for held(t, cleaner, d) {
			if time.Now().After(deadline) {
				t.Fatal("the hold of a dead process never expired")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestTouch: the first reader of a digest marks it used, once per minute.
func TestTouch(t *testing.T) {
	t.Parallel()
	touched := make(chan string, 4)
	tr := inuse.New(nil, nil, inuse.WithTouch(func(d string) { touched <- d }))
	defer tr.Close()
	tr.Hold(context.Background(), "sha256:bbbb")()
	tr.Hold(context.Background(), "sha256:bbbb")()
	select {
	case d := <-touched:
		if d != "sha256:bbbb" {
			t.Fatalf("touched %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never touched")
	}
	tr.Hold(context.Background(), "sha256:cccc")()
	if d := <-touched; d != "sha256:cccc" {
		t.Fatalf("touched %s again within a minute, want sha256:cccc", d)
	}
}

// TestLease: a lease holds a digest for its duration in every process, without a reader, and
// a hold released meanwhile does not shorten it.
func TestLease(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		rdb := redisOf(t, e)
		redirector := inuse.New(rdb, nil, inuse.WithTTL(300*time.Millisecond))
		defer redirector.Close()
		cleaner := inuse.New(rdb, nil)
		defer cleaner.Close()
		const d = "sha256:bbbb"
		redirector.Lease(context.Background(), d, 5*time.Second)
		if !held(t, cleaner, d) || !held(t, redirector, d) {
			t.Fatal("a leased digest is not held")
		}
		redirector.Hold(context.Background(), d)() // a reader comes and goes
		time.Sleep(time.Second)                    // past the holds' TTL, within the lease
		if !held(t, cleaner, d) {
			t.Fatal("the lease ended with the TTL of a released hold")
		}
		deadline := time.Now().Add(10 * time.Second)
		for held(t, cleaner, d) || held(t, redirector, d) {
			if time.Now().After(deadline) {
				t.Fatal("the lease never ended")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestRedisDown: a tracker whose Redis does not answer (a listener that accepts and never
// replies) tries it once per backoff, not at every read's start and end, and counts its holds
// locally; once a Redis answers at that address again, the refresher writes the holds there,
// where another process sees them.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var accepted atomic.Int32
	var frozen []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			frozen = append(frozen, c)
			mu.Unlock()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true}) // as cmd/pulpgo makes it
	t.Cleanup(func() { _ = rdb.Close() })
	tr := inuse.New(rdb, nil, inuse.WithTTL(300*time.Millisecond))
	defer tr.Close()
	for i := range 20 {
		tr.Hold(context.Background(), fmt.Sprintf("sha256:%064d", i))()
	}
	const d = "sha256:cccc"
	release := tr.Hold(context.Background(), d)
	defer release()
	if n := accepted.Load(); n > 3 {
		t.Errorf("41 Redis writes with Redis frozen opened %d connections; want the first failure to leave Redis alone", n)
	}
	if m, err := tr.Held(context.Background(), []string{d}); err == nil && !m[d] {
		t.Error("a hold made while Redis is down does not count in its own process")
	}

	// Redis comes back at the same address: the refresher writes the hold there.
	ln.Close()
	mu.Lock()
	for _, c := range frozen {
		c.Close()
	}
	mu.Unlock()
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(addr); err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	t.Cleanup(mr.Close)
	other := inuse.New(redis.NewClient(&redis.Options{Addr: addr}), nil)
	defer other.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !held(t, other, d) {
		if time.Now().After(deadline) {
			t.Fatal("the hold made while Redis was down never reached Redis once it was back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeaseWritesOnce: leasing the same blob again and again (a client asking for the same
// redirect in a loop) keeps one field per process in Redis, written once per half lease.
func TestLeaseWritesOnce(t *testing.T) {
	t.Parallel()
	rdb := redisOf(t, testenv.Embedded())
	a := inuse.New(rdb, nil)
	defer a.Close()
	b := inuse.New(rdb, nil)
	defer b.Close()
	const d = "sha256:dddd"
	for range 1000 {
		a.Lease(context.Background(), d, time.Minute)
		b.Lease(context.Background(), d, time.Minute)
	}
	n, err := rdb.HLen(context.Background(), "pulpgo:inuse:"+d).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("2000 leases by two processes left %d fields in Redis, want 2", n)
	}
	if !held(t, a, d) {
		t.Error("the leased blob is not held")
	}
}
