package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBreaker drives one host's breaker through its states with a controlled clock: it opens
// after the configured consecutive failures (503s), sends nothing while open, lets one probe
// through after the cool-down (a failed probe opens it again), and closes on a successful one.
// 404s and 500s (an answer to one request, which a client could provoke on purpose) neither
// open it nor count as failures.
func TestBreaker(t *testing.T) {
	var requests atomic.Int64
	var mode atomic.Value // "down" (503), "broken" (500), "up"
	mode.Store("up")
	f := newFake(t, authNone, func(f *fakeRegistry) {
		f.handle = func(w http.ResponseWriter, r *http.Request) bool {
			requests.Add(1)
			switch mode.Load() {
			case "down":
				writeRegError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "down")
				return true
			case "broken":
				writeRegError(w, http.StatusInternalServerError, "UNKNOWN", "this name upsets me")
				return true
			}
			return false
		}
	})
	f.addManifest("lib/a", "v1", ociManifestType, ociManifest(1))
	bs := NewBreakers(3, 30*time.Second)
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	bs.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var changes []string
	bs.Watch(func(host string, st BreakerStatus) { changes = append(changes, st.State) })
	c := newClient(t, f.reg.URL, func(c *Config) { c.Breakers = bs })
	// A second client of the same host shares the breaker.
	c2 := newClient(t, f.reg.URL, func(c *Config) { c.Breakers = bs; c.Username, c.Password = "x", "y" })
	ctx := context.Background()

	for range 5 {
		if _, err := c.HeadManifest(ctx, "lib/a", "missing", nil); !IsNotFound(err) {
			t.Fatalf("HEAD of a missing tag: %v", err)
		}
	}
	if st := c.BreakerStatus(); st.State != BreakerClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("after 404s: %+v, want closed without failures", st)
	}
	mode.Store("broken")
	for range 5 {
		if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err == nil || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("HEAD answered 500: %v, want the upstream's error", err)
		}
	}
	if st := c.BreakerStatus(); st.State != BreakerClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("after 500s: %+v, want closed without failures", st)
	}
	mode.Store("down")
	for i := range 3 {
		if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("request %d refused by the breaker before 3 failures", i+1)
		}
	}
	st := c2.BreakerStatus()
	if st.State != BreakerOpen || st.ConsecutiveFailures != 3 || !st.RetryAt.Equal(now.Add(30*time.Second)) {
		t.Fatalf("after 3 failures: %+v, want open until now+30s", st)
	}
	before := requests.Load()
	for range 10 {
		_, err := c2.HeadManifest(ctx, "lib/a", "v1", nil)
		if !errors.Is(err, ErrBreakerOpen) || !IsUnavailable(err) {
			t.Fatalf("while open: %v, want ErrBreakerOpen (unavailable)", err)
		}
		if _, _, err := c.GetBlob(ctx, "lib/a", digestOf([]byte("x")), 0); !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("blob GET while open: %v, want ErrBreakerOpen", err)
		}
	}
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("%d requests reached the upstream while the breaker was open", n)
	}
	advance(31 * time.Second)
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err == nil || errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("probe: %v, want the upstream's 503", err)
	}
	if st := c.BreakerStatus(); st.State != BreakerOpen || !st.RetryAt.Equal(now.Add(30*time.Second)) {
		t.Fatalf("after a failed probe: %+v, want open again for a cool-down", st)
	}
	mode.Store("up")
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("before the second cool-down ends: %v, want ErrBreakerOpen", err)
	}
	advance(31 * time.Second)
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatalf("probe to a recovered upstream: %v", err)
	}
	if st := c.BreakerStatus(); st.State != BreakerClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("after a good probe: %+v, want closed", st)
	}
	want := []string{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if len(changes) != len(want) {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("state changes %v, want %v", changes, want)
		}
	}
}

// TestBreakerRefusedAndHanging checks that refused connections and timeouts count as
// failures, and that while half open only the one probe goes upstream.
func TestBreakerRefusedAndHanging(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // connections to addr are now refused
	bs := NewBreakers(2, time.Minute)
	c := newClient(t, "http://"+addr, func(c *Config) { c.Breakers = bs })
	for range 2 {
		if _, err := c.HeadManifest(context.Background(), "lib/a", "v1", nil); !IsUnavailable(err) || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("refused connection: %v", err)
		}
	}
	if st := c.BreakerStatus(); st.State != BreakerOpen {
		t.Fatalf("after 2 refused connections: %+v, want open", st)
	}

	release := make(chan struct{})
	var hits atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
	}))
	defer hang.Close()
	defer close(release)
	bs2 := NewBreakers(1, time.Minute)
	now := time.Unix(1_000_000, 0)
	bs2.now = func() time.Time { return now }
	h := newClient(t, hang.URL, func(c *Config) { c.Breakers = bs2; c.Timeout = 50 * time.Millisecond })
	if _, err := h.HeadManifest(context.Background(), "lib/a", "v1", nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hanging upstream: %v, want a timeout", err)
	}
	if st := h.BreakerStatus(); st.State != BreakerOpen {
		t.Fatalf("after a timeout with failures=1: %+v, want open", st)
	}
	now = now.Add(2 * time.Minute)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.HeadManifest(context.Background(), "lib/a", "v1", nil); errors.Is(err, ErrBreakerOpen) {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 2 || refused.Load() != 7 {
		t.Fatalf("half open: %d requests upstream in all (want 2: the first timeout and one probe), %d refused (want 7)", hits.Load(), refused.Load())
	}
}
