package client

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

const (
	// WaitTimeout bounds every poll for a state the server reaches on its own (Poll,
	// API.WaitTask).
	WaitTimeout = 60 * time.Second
	// PollEvery is the polling interval of those waits.
	PollEvery = 25 * time.Millisecond
)

// Context returns a context that ends with t (bounded to a few minutes), for the requests
// of one test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// NeedTools fails t when a client the tests use (a program on PATH) is missing.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: install the packages .ci/run installs", n)
		}
	}
}

// StartHub starts the local Docker Hub of package upstream (a real registry behind a token
// front), closed when t ends.
func StartHub(t testing.TB) *upstream.Upstream {
	t.Helper()
	NeedTools(t, "docker-registry", "skopeo", "busybox")
	hub, err := upstream.Start(Context(t), upstream.Options{})
	if err != nil {
		t.Fatalf("start the upstream: %v", err)
	}
	t.Cleanup(func() { hub.Close() })
	return hub
}

// BudgetHub is a StartBudgetHub upstream: the local Docker Hub with a pull budget and
// moving tags.
type BudgetHub struct {
	*upstream.Upstream
	// Images are the moving images as first pushed (upstream.MovingName(i):latest);
	// MovingImages has where their tags point now.
	Images []upstream.Image
}

// StartBudgetHub starts the local Docker Hub with Docker Hub's pull budget (limit manifest
// GETs per rolling window, 429 past it, RateLimit headers on manifest GETs and HEADs) and
// images moving images (library/farm-0:latest and on) whose tags move to a new digest every
// move (never when move is 0; MoveTags moves them at once). Counts, BudgetRemaining and
// RefillBudget read and reset what it saw; it is closed when t ends.
func StartBudgetHub(t testing.TB, limit int, window time.Duration, images int, move time.Duration) *BudgetHub {
	t.Helper()
	NeedTools(t, "docker-registry")
	hub, err := upstream.Start(Context(t), upstream.Options{PullBudget: upstream.PullBudget{Limit: limit, Window: window}})
	if err != nil {
		t.Fatalf("start the upstream: %v", err)
	}
	t.Cleanup(func() { hub.Close() })
	imgs, err := hub.PushMoving(Context(t), images, move)
	if err != nil {
		t.Fatalf("push the moving images: %v", err)
	}
	return &BudgetHub{Upstream: hub, Images: imgs}
}

// NewHTTPClient returns a client for 127.0.0.1: no proxy, no transparent gzip, many
// connections per host (the concurrency tests open 20 at once), and no overall timeout
// (set Timeout on the result for one).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        128,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Poll calls cond every PollEvery until it reports true, failing t after WaitTimeout with
// cond's last explanation; what names the awaited state in that message.
func Poll(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	PollFor(t, WaitTimeout, what, cond)
}

// PollFor is Poll with its own timeout.
func PollFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %s", timeout, what, why)
		}
		<-tick.C
	}
}
