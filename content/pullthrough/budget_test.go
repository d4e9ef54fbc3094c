package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/upstream"
)

// pull is what a client does: the manifest of tag, then its config and layers, read to the
// end. It returns the manifest's digest.
func pull(ctx context.Context, e *cacheEnv, tag string) (string, error) {
	img, err := e.cache.Image(ctx, e.pt, "library/app")
	if err != nil {
		return "", err
	}
	m, err := img.Manifest(ctx, tag)
	if err != nil {
		return "", err
	}
	for _, d := range append([]oci.Descriptor{*m.Config}, m.Layers...) {
		bc, err := img.Blob(ctx, d.Digest, false)
		if err != nil {
			return "", fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		var rc io.ReadCloser = bc.File
		if rc == nil {
			rc = bc.Open(ctx, 0)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("blob %s: %w", d.Digest, err)
		}
	}
	return m.Digest, nil
}

// TestBudgetCIFarm is the CI farm: 50 clients pull 10 tags in a loop for more than two
// windows of an upstream budget far smaller than what following every move of the tags would
// take (10 tags moving twice a second need 20 GETs a second; the budget is 20 per 2 s). Every
// pull is served; no manifest GET is ever refused (the cache never asks beyond the budget);
// tags are served stale while the budget is low; at most one request per tag is upstream at
// once; and once a window passes without pulls, each tag is served fresh again.
func TestBudgetCIFarm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const limit, clients, rounds = 20, 50, 5
	window := 2 * time.Second
	hub := newBudgetHub(t, limit, window, 500*time.Millisecond)
	e := newCacheEnv(t, hub.srv.URL, Config{BudgetLow: 0.10})
	tags := make([]string, 10)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	var served, stale, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tag := tags[i%len(tags)]
				d, err := pull(context.Background(), e, tag)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				served.Add(1)
				if d != hub.current(tag) {
					stale.Add(1)
				}
			}
		}()
	}
	time.Sleep(rounds * window / 2) // the load runs for 2.5 windows
	close(stop)
	wg.Wait()
	heads, gets, refused, _ := hub.counts()
	t.Logf("pulls served %d (stale %d), failed %d; upstream manifest HEADs %d, GETs %d, refused %d",
		served.Load(), stale.Load(), failed.Load(), heads, gets, refused)
	if failed.Load() != 0 {
		t.Fatalf("%d pulls failed, first: %v", failed.Load(), firstErr.Load())
	}
	if refused != 0 {
		t.Fatalf("%d manifest GETs went past the upstream's budget", refused)
	}
	if stale.Load() == 0 {
		t.Fatal("no pull was served stale: the budget cannot have followed every move")
	}
	hub.mu.Lock()
	maxFlight := hub.maxFlight
	hub.mu.Unlock()
	if maxFlight > 1 {
		t.Fatalf("%d requests for one tag were upstream at once, want at most 1", maxFlight)
	}
	// The tags stop moving and a window passes: the budget recovers, every tag is fresh.
	hub.freeze(tags)
	time.Sleep(window + 100*time.Millisecond)
	for _, tag := range tags {
		d, err := pull(context.Background(), e, tag)
		if err != nil {
			t.Fatalf("pull of %s after recovery: %v", tag, err)
		}
		if want := hub.current(tag); d != want {
			t.Fatalf("%s after recovery: %s, want the upstream's %s", tag, d, want)
		}
	}
}

// TestBudgetStaleThenFresh steps through the budget rules with a budget the test sets: a tag
// that moved while the budget is spent (or low) is served from the cache without a GET; a
// tag never cached gets TOOMANYREQUESTS with Retry-After at once when spent, and its GET when
// low; once a HEAD shows the budget back, the moved tag is fetched and served fresh.
func TestBudgetStaleThenFresh(t *testing.T) {
	hub := newBudgetHub(t, 100, time.Hour, 0)
	e := newCacheEnv(t, hub.srv.URL, Config{BudgetLow: 0.10})
	ctx := context.Background()
	first, err := pull(ctx, e, "a")
	if err != nil {
		t.Fatal(err)
	}
	move := func() string {
		hub.mu.Lock()
		hub.bumps["a"]++
		hub.mu.Unlock()
		return hub.current("a")
	}
	second := move()
	hub.setRemaining(0)
	_, getsBefore, _, _ := hub.counts()
	if d, err := pull(ctx, e, "a"); err != nil || d != first {
		t.Fatalf("moved tag with the budget spent: %s, %v; want the cached %s", d, err, first)
	}
	_, err = pull(ctx, e, "never-pulled")
	var ra interface{ RetryAfter() time.Duration }
	if !errors.Is(err, oci.ErrUpstreamThrottle) || !errors.As(err, &ra) || ra.RetryAfter() < time.Second {
		t.Fatalf("new tag with the budget spent: %v, want TOOMANYREQUESTS with a Retry-After", err)
	}
	if _, gets, _, _ := hub.counts(); gets != getsBefore {
		t.Fatalf("%d manifest GETs sent with the budget spent", gets-getsBefore)
	}
	// Low: 9 of 100 left, 10 % kept. The moved tag stays stale; a new tag is fetched.
	hub.setRemaining(9)
	if d, err := pull(ctx, e, "a"); err != nil || d != first {
		t.Fatalf("moved tag with the budget low: %s, %v; want the cached %s", d, err, first)
	}
	if _, err := pull(ctx, e, "new"); err != nil {
		t.Fatalf("new tag with the budget low: %v", err)
	}
	if _, gets, _, _ := hub.counts(); gets != getsBefore+1 {
		t.Fatalf("%d manifest GETs with the budget low, want 1 (the new tag)", gets-getsBefore)
	}
	hub.setRemaining(50)
	if d, err := pull(ctx, e, "a"); err != nil || d != second {
		t.Fatalf("moved tag after the budget recovered: %s, %v; want the upstream's %s", d, err, second)
	}
}

// TestBreakerServesCache checks the circuit breaker through the cache: an upstream answering
// 503 opens it after the configured failures; while open a cached tag is served and an
// uncached one answered UNAVAILABLE without any request upstream, blob fills included; after
// the cool-down one probe goes through, and an upstream back up closes it.
func TestBreakerServesCache(t *testing.T) {
	hub := newBudgetHub(t, 1000, time.Hour, 0)
	breakers := upstream.NewBreakers(3, 300*time.Millisecond)
	clients := remotes.NewClients(5 * time.Second)
	clients.Watch(breakers, nil)
	e := newCacheEnv(t, hub.srv.URL, Config{Clients: clients})
	ctx := context.Background()
	cached, err := pull(ctx, e, "a")
	if err != nil {
		t.Fatal(err)
	}
	host := hub.srv.Listener.Addr().String()
	hub.setDown(true)
	for i := range 3 {
		if d, err := pull(ctx, e, "a"); err != nil || d != cached {
			t.Fatalf("pull %d with the upstream down: %s, %v; want the cached tag", i+1, d, err)
		}
	}
	if st := breakers.Status(host); st.State != upstream.BreakerOpen {
		t.Fatalf("after 3 failures the breaker is %+v, want open", st)
	}
	_, _, _, before := hub.counts()
	for range 20 {
		if d, err := pull(ctx, e, "a"); err != nil || d != cached {
			t.Fatalf("cached tag while open: %s, %v", d, err)
		}
		_, err := pull(ctx, e, "b")
		var oe *oci.Error
		if !errors.As(err, &oe) || oe.Status != http.StatusServiceUnavailable || oe.Code != "UNAVAILABLE" {
			t.Fatalf("uncached tag while open: %v, want 503 UNAVAILABLE", err)
		}
	}
	img, err := e.cache.Image(ctx, e.pt, "library/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.Blob(ctx, oci.Digest([]byte("not cached")), false); !errors.Is(err, oci.ErrUpstreamUnavailable) {
		t.Fatalf("uncached blob while open: %v, want UNAVAILABLE", err)
	}
	if _, _, _, after := hub.counts(); after != before {
		t.Fatalf("%d requests reached the upstream while the breaker was open", after-before)
	}
	hub.setDown(false)
	time.Sleep(400 * time.Millisecond) // past the cool-down
	if _, err := pull(ctx, e, "b"); err != nil {
		t.Fatalf("the half-open probe to an upstream back up: %v", err)
	}
	if st := breakers.Status(host); st.State != upstream.BreakerClosed {
		t.Fatalf("after a good probe the breaker is %+v, want closed", st)
	}
}
