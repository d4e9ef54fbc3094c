package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// TestFarm runs the farm straight against the local Docker Hub: every pull is served while
// the budget lasts, the tag moves are seen, and pulls past the budget fail as 429s.
func TestFarm(t *testing.T) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Fatalf("docker-registry is not installed (apt-get install -y docker-registry): %v", err)
	}
	u, err := upstream.Start(t.Context(), upstream.Options{PullBudget: upstream.PullBudget{Limit: 1000, Window: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	imgs, err := u.PushMoving(t.Context(), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := httptest.NewServer(u.CountsHandler())
	defer counts.Close()
	o := options{registry: u.URL(), upstreamCounts: counts.URL, clients: 4, layerConcurrency: 3, verify: true,
		authTokenFlow: true, platform: "linux/amd64", label: "test"}
	for _, img := range imgs {
		o.images = append(o.images, img.Ref())
	}
	// Move the tags once mid-run, once every image has been pulled, and end the run once
	// every image has been pulled after the move: clients × images manifest GETs include
	// images pulls in a row by one client, which pulls the images in turn.
	loadCtx, cancel := context.WithCancel(t.Context())
	waitCtx, stopWait := context.WithTimeout(t.Context(), time.Minute) // bounds the waits below
	defer stopWait()
	moved := make(chan error, 1)
	go func() {
		defer cancel()
		waitGets := func(n int) bool {
			for u.Counts().ManifestGets < n {
				select {
				case <-waitCtx.Done():
					return false
				case <-time.After(10 * time.Millisecond):
				}
			}
			return true
		}
		if !waitGets(o.clients * len(imgs)) {
			moved <- fmt.Errorf("the farm made no %d manifest GETs within a minute", o.clients*len(imgs))
			return
		}
		_, err := u.MoveTags(t.Context())
		moved <- err
		waitGets(u.Counts().ManifestGets + o.clients*len(imgs))
	}()
	res := farmUntil(t.Context(), loadCtx, o)
	if err := <-moved; err != nil {
		t.Fatal(err)
	}
	c := u.Counts()
	t.Logf("farm: %+v; upstream: %+v", res, c)
	if res.Errors != 0 || res.PullsFailed != 0 || res.PullsOK == 0 || res.Pulls != res.PullsOK {
		t.Fatalf("farm within the budget: %d pulls, %d ok, %d failed (%v), want all ok", res.Pulls, res.PullsOK, res.PullsFailed, res.ErrorSamples)
	}
	if c.ManifestGets != res.PullsOK || res.TokenRequests != int64(res.PullsOK) {
		t.Errorf("upstream manifest GETs %d, token requests %d, want one each per pull (%d)", c.ManifestGets, res.TokenRequests, res.PullsOK)
	}
	if f := res.Freshness; f == nil || f.Fresh != res.PullsOK || f.Stale != 0 || f.Unknown != 0 || f.PollError != "" {
		t.Errorf("freshness %+v, want all %d pulls straight from the upstream fresh", f, res.PullsOK)
	}
	for _, img := range imgs {
		if n := res.DigestsServed[img.Ref()]; n != 2 {
			t.Errorf("%s served as %d digests, want 2 (one move during the run)", img.Ref(), n)
		}
	}

	// Past the budget: the pulls that get a 429 fail, and say so.
	c0 := &client{hc: newHTTPClient(1), base: u.URL(), name: imgs[0].Name, authFlow: true, stats: &clientStats{}}
	for u.BudgetRemaining() > 0 { // spend the rest of the budget
		if _, err := c0.manifest(t.Context(), upstream.MovingTag); err != nil {
			t.Fatalf("manifest GET with %d of the budget left: %v", u.BudgetRemaining(), err)
		}
	}
	o.duration = 200 * time.Millisecond
	res = runFarm(t.Context(), o)
	if res.PullsOK != 0 || res.PullsFailed == 0 || res.ErrorKinds["429"] != res.PullsFailed || len(res.ErrorSamples) == 0 {
		t.Errorf("farm past the budget: %d ok, %d failed, kinds %v, samples %v; want every pull failed with 429", res.PullsOK, res.PullsFailed, res.ErrorKinds, res.ErrorSamples)
	}
}

// TestStaleness: a pull is fresh when it got the tag's digest of when it started (or a later
// one), stale by the moves it was behind, unknown when its digest is of no generation.
func TestStaleness(t *testing.T) {
	var mu sync.Mutex
	state := `{"moving_generation":0,"moving_digests":{"library/farm-0":"sha256:a0","library/farm-1":"sha256:b0"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, state)
	}))
	defer srv.Close()
	s := newStaleness(srv.URL, srv.Client())
	if err := s.poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.generationNow("docker-cache/library/farm-1"); got != 0 {
		t.Errorf("generation of docker-cache/library/farm-1 = %d, want 0", got)
	}
	if got := s.generationNow("library/other"); got != -1 {
		t.Errorf("generation of a repository that does not move = %d, want -1", got)
	}
	served := []farmPull{{digest: "sha256:a0", want: 0}}
	for g := 1; g <= 3; g++ {
		mu.Lock()
		state = fmt.Sprintf(`{"moving_generation":%d,"moving_digests":{"library/farm-0":"sha256:a%d","library/farm-1":"sha256:b%d"}}`, g, g, g)
		mu.Unlock()
		if err := s.poll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	served = append(served,
		farmPull{digest: "sha256:a3", want: 3}, // fresh
		farmPull{digest: "sha256:b3", want: 2}, // newer than when it started: fresh
		farmPull{digest: "sha256:a1", want: 3}, // 2 behind
		farmPull{digest: "sha256:b2", want: 3}, // 1 behind
		farmPull{digest: "sha256:zz", want: 3}) // of no generation
	f := s.judge(t.Context(), served)
	if want := (freshness{Fresh: 3, Stale: 2, MaxBehind: 2, Unknown: 1}); *f != want {
		t.Errorf("judge = %+v, want %+v", *f, want)
	}
}
