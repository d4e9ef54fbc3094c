package upstream

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestParseRateLimit(t *testing.T) {
	for _, c := range []struct {
		in        string
		n, window int
		ok        bool
	}{
		{"100;w=21600", 100, 21600, true},
		{" 76 ; w=21600 ", 76, 21600, true},
		{"10", 10, 0, true},
		{"0;w=60;comment=\"x\"", 0, 60, true},
		{"", 0, 0, false},
		{"abc;w=60", 0, 0, false},
		{"-1;w=60", 0, 0, false},
		{"10;w=soon", 0, 0, false},
		{"10;w=-5", 0, 0, false},
		{"1e3", 0, 0, false},
	} {
		n, w, ok := parseRateLimit(c.in)
		if n != c.n || w != c.window || ok != c.ok {
			t.Errorf("parseRateLimit(%q) = %d, %d, %v; want %d, %d, %v", c.in, n, w, ok, c.n, c.window, c.ok)
		}
	}
}

// TestBudgetFromHeaders checks what a client makes of its upstream's RateLimit headers: a
// good report is kept, a malformed or missing one changes nothing, a 429 spends the budget
// until its Retry-After, and a HEAD showing budget again ends that.
func TestBudgetFromHeaders(t *testing.T) {
	var mu sync.Mutex
	limit, remaining := "100;w=3600", "76;w=3600"
	throttle := ""
	f := newFake(t, authNone, func(f *fakeRegistry) {
		f.handle = func(w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if limit != "" {
				w.Header().Set("RateLimit-Limit", limit)
			}
			if remaining != "" {
				w.Header().Set("RateLimit-Remaining", remaining)
			}
			if throttle != "" && r.Method == http.MethodGet {
				if throttle != "bare" {
					w.Header().Set("Retry-After", throttle)
				}
				writeRegError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "pull limit")
				return true
			}
			return false
		}
	})
	f.addManifest("lib/a", "v1", ociManifestType, ociManifest(1))
	c := newClient(t, f.reg.URL)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	set := func(l, r, th string) { mu.Lock(); limit, remaining, throttle = l, r, th; mu.Unlock() }
	ctx := context.Background()

	if b := c.Budget(); b.Known(now) {
		t.Fatalf("budget before any answer: %+v, want unknown", b)
	}
	if _, _, err := c.GetManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	b := c.Budget()
	if b.Limit != 100 || b.Remaining != 76 || b.Window != time.Hour || !b.ObservedAt.Equal(now) || b.Low(now, 0.1) {
		t.Fatalf("budget after a GET: %+v", b)
	}
	set("garbage", "also;w=x", "")
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if got := c.Budget(); got != b {
		t.Fatalf("malformed headers changed the budget: %+v, want %+v", got, b)
	}
	set("", "", "")
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if got := c.Budget(); got != b {
		t.Fatalf("missing headers changed the budget: %+v, want %+v", got, b)
	}
	set("100;w=3600", "9;w=3600", "")
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); !b.Low(now, 0.1) || b.Spent(now) {
		t.Fatalf("9 of 100 left: %+v, want low and not spent", b)
	}
	// A bare 429 (no RateLimit headers, no Retry-After) is a passing throttle, not a budget.
	set("", "", "bare")
	if _, _, err := c.GetManifest(ctx, "lib/a", "v1", nil); !IsTooManyRequests(err) {
		t.Fatalf("GET error %v, want a 429", err)
	}
	if b := c.Budget(); b.Spent(now) || b.Remaining != 9 {
		t.Fatalf("a bare 429 changed the budget: %+v", b)
	}
	set("100;w=3600", "0;w=3600", "120")
	_, _, err := c.GetManifest(ctx, "lib/a", "v1", nil)
	if !IsTooManyRequests(err) {
		t.Fatalf("GET error %v, want a 429", err)
	}
	b = c.Budget()
	if !b.Spent(now) || !b.SpentUntil.Equal(now.Add(120*time.Second)) {
		t.Fatalf("after a 429 with Retry-After 120: %+v", b)
	}
	if _, ok := c.ReserveManifestGet(0); ok {
		t.Fatal("a GET was reserved from a spent budget")
	}
	now = now.Add(10 * time.Second)
	set("100;w=3600", "50;w=3600", "")
	if _, err := c.HeadManifest(ctx, "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if b := c.Budget(); b.Spent(now) || b.Low(now, 0.1) || b.Remaining != 50 {
		t.Fatalf("a HEAD reported 50 left: %+v, want recovered", b)
	}
	// A report older than its window says nothing any more.
	now = now.Add(2 * time.Hour)
	if b := c.Budget(); b.Known(now) || b.Low(now, 0.1) {
		t.Fatalf("budget two windows later: %+v, want unknown", b)
	}
}

// TestBudgetPerCredentials checks that two clients of one upstream with different
// credentials keep separate budgets, as the upstream counts them separately.
func TestBudgetPerCredentials(t *testing.T) {
	var mu sync.Mutex
	left := map[string]int{"alice": 50, "bob": 3}
	f := newFake(t, authBasic, func(f *fakeRegistry) {
		f.user, f.pass = "alice", "pw"
		f.handle = func(w http.ResponseWriter, r *http.Request) bool {
			user, pass, _ := r.BasicAuth()
			mu.Lock()
			defer mu.Unlock()
			if n, ok := left[user]; ok {
				w.Header().Set("RateLimit-Limit", "60;w=600")
				w.Header().Set("RateLimit-Remaining", strconv.Itoa(n)+";w=600")
			}
			if user == "bob" && pass == "pw2" {
				// The fake knows one user; bob's answers are made here.
				body := ociManifest(1)
				w.Header().Set("Content-Type", ociManifestType)
				w.Header().Set("Docker-Content-Digest", digestOf(body))
				_, _ = w.Write(body)
				return true
			}
			return false
		}
	})
	f.addManifest("lib/a", "v1", ociManifestType, ociManifest(1))
	alice := newClient(t, f.reg.URL, func(c *Config) { c.Username, c.Password = "alice", "pw" })
	bob := newClient(t, f.reg.URL, func(c *Config) { c.Username, c.Password = "bob", "pw2" })
	if _, _, err := alice.GetManifest(context.Background(), "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.GetManifest(context.Background(), "lib/a", "v1", nil); err != nil {
		t.Fatal(err)
	}
	if b := alice.Budget(); b.Remaining != 50 || b.Limit != 60 {
		t.Fatalf("alice's budget: %+v", b)
	}
	if b := bob.Budget(); b.Remaining != 3 || !b.Low(time.Now(), 0.1) {
		t.Fatalf("bob's budget: %+v, want his own 3 left (low)", b)
	}
	if b := alice.Budget(); b.Low(time.Now(), 0.1) {
		t.Fatalf("bob's low budget made alice's low: %+v", b)
	}
}

// TestReserveCountsGetsInFlight checks that concurrent callers cannot together spend more
// than the budget one report left: each reservation counts until it is released.
func TestReserveCountsGetsInFlight(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	h := http.Header{"Ratelimit-Limit": {"100;w=60"}, "Ratelimit-Remaining": {"15;w=60"}}
	c.budget.observe(h, http.StatusOK, now, now)
	var got int
	var releases []func()
	for range 20 {
		if release, ok := c.ReserveManifestGet(0.10); ok {
			got++
			releases = append(releases, release)
		}
	}
	if got != 5 {
		t.Fatalf("reserved %d GETs with 15 of 100 left and 10 %% kept, want 5", got)
	}
	if _, ok := c.ReserveManifestGet(0); !ok {
		t.Fatal("a GET for an uncached manifest (nothing kept) was refused with 10 left")
	}
	for _, r := range releases {
		r()
	}
	if b := c.Budget(); b.Remaining != 14 {
		t.Fatalf("remaining after releases %d, want 14 (one still in flight)", b.Remaining)
	}
	// A report of a request sent before the last one recorded is older news.
	old := http.Header{"Ratelimit-Limit": {"100;w=60"}, "Ratelimit-Remaining": {"90;w=60"}}
	c.budget.observe(old, http.StatusOK, now.Add(-time.Second), now)
	if b := c.Budget(); b.Remaining != 14 {
		t.Fatalf("remaining %d after an older report, want 14: it must be ignored", b.Remaining)
	}
}

// TestCapRetryAfter: an upstream's Retry-After sets a refusal of at most the longer of its
// window and an hour, however large (no overflow, no refusal until a restart).
func TestCapRetryAfter(t *testing.T) {
	for _, c := range []struct {
		retry  int
		window time.Duration
		want   time.Duration
	}{
		{30, time.Minute, 30 * time.Second},
		{9_000_000_000, time.Minute, time.Hour},
		{1 << 62, 0, time.Hour},
		{20_000, 6 * time.Hour, 20_000 * time.Second},
		{90_000, 6 * time.Hour, 6 * time.Hour},
	} {
		if got := capRetryAfter(c.retry, c.window); got != c.want {
			t.Errorf("capRetryAfter(%d, %v) = %v, want %v", c.retry, c.window, got, c.want)
		}
	}
}
