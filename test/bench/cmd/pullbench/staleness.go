package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// stalenessPoll is how often the upstream's moving tags are read.
const stalenessPoll = 50 * time.Millisecond

// staleness follows the moving tags of a fakehub (its counts URL: moving_generation and
// moving_digests) while a farm runs, so that each pull can be told fresh (it got the digest
// the upstream's tag pointed at when the pull started, or a later one) or stale (how many
// moves behind). It is safe for concurrent use.
type staleness struct {
	url string
	hc  *http.Client

	mu   sync.Mutex
	gens map[string]int // manifest digest -> the generation it belongs to
	cur  map[string]int // upstream repository -> its tag's generation now
	err  error          // the last failed poll
}

func newStaleness(url string, hc *http.Client) *staleness {
	return &staleness{url: url, hc: hc, gens: map[string]int{}, cur: map[string]int{}}
}

// poll reads the upstream's moving tags once.
func (s *staleness) poll(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var c struct {
		Generation int               `json:"moving_generation"`
		Digests    map[string]string `json:"moving_digests"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return fmt.Errorf("GET %s: %w", s.url, err)
	}
	if len(c.Digests) == 0 {
		return fmt.Errorf("GET %s: no moving_digests (is it a fakehub with -moving?)", s.url)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, d := range c.Digests {
		s.gens[d] = c.Generation
		s.cur[name] = c.Generation
	}
	return nil
}

// run polls until ctx ends.
func (s *staleness) run(ctx context.Context) {
	tick := time.NewTicker(stalenessPoll)
	defer tick.Stop()
	for {
		if err := s.poll(ctx); err != nil && ctx.Err() == nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// upstreamName returns the upstream repository the pulled name is, the longest that name is
// or ends in ("docker-cache/library/farm-0" is "library/farm-0"), or "".
func (s *staleness) upstreamName(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := ""
	for up := range s.cur {
		if (name == up || strings.HasSuffix(name, "/"+up)) && len(up) > len(best) {
			best = up
		}
	}
	return best
}

// generationNow returns the generation the tag of the pulled repository name points at now,
// or -1 when it is not a moving image.
func (s *staleness) generationNow(name string) int {
	up := s.upstreamName(name)
	if up == "" {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur[up]
}

// behind returns how many moves the digest was behind generation want: 0 when it is that
// generation or a later one; ok is false when the digest is of no generation seen.
func (s *staleness) behind(digest string, want int) (n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gens[digest]
	if !ok {
		return 0, false
	}
	return max(want-g, 0), true
}

// judge reads the upstream once more (so that every generation is known) and counts the
// served pulls fresh, stale or unknown.
func (s *staleness) judge(ctx context.Context, served []farmPull) *freshness {
	f := &freshness{}
	if err := s.poll(ctx); err != nil {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}
	for _, p := range served {
		switch n, ok := s.behind(p.digest, p.want); {
		case !ok:
			f.Unknown++
		case n == 0:
			f.Fresh++
		default:
			f.Stale++
			f.MaxBehind = max(f.MaxBehind, n)
		}
	}
	s.mu.Lock()
	if s.err != nil {
		f.PollError = s.err.Error()
	}
	s.mu.Unlock()
	return f
}
