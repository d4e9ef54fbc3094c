package upstream

import (
	"encoding/json"
	"maps"
	"net/http"
)

// CountsSnapshot is what CountsHandler serves: the totals of Counts plus the
// front blob GETs and CDN blob GETs of every digest.
type CountsSnapshot struct {
	Counts
	// BlobGetsByDigest maps a digest to the GETs of it that reached the front.
	BlobGetsByDigest map[string]int `json:"blob_gets_by_digest"`
	// CDNGetsByDigest maps a digest to the GETs of it the CDN served.
	CDNGetsByDigest map[string]int `json:"cdn_gets_by_digest"`
	// BudgetRemaining is what BudgetRemaining returns; absent without a
	// pull budget.
	BudgetRemaining *int `json:"budget_remaining,omitempty"`
	// MovingGeneration is how many times the moving tags have moved.
	MovingGeneration int `json:"moving_generation"`
	// MovingDigests maps each moving image's repository to the manifest digest its tag
	// points at now; absent without moving images.
	MovingDigests map[string]string `json:"moving_digests,omitempty"`
}

// CountsSnapshot returns the counters and the per-digest blob counts, taken
// together under one lock, with the budget left and the moving generation.
func (u *Upstream) CountsSnapshot() CountsSnapshot {
	k := u.counts
	k.mu.Lock()
	s := CountsSnapshot{Counts: k.c, BlobGetsByDigest: maps.Clone(k.blobGets), CDNGetsByDigest: maps.Clone(k.cdnGets)}
	k.mu.Unlock()
	if left := u.BudgetRemaining(); left >= 0 {
		s.BudgetRemaining = &left
	}
	if m := u.moving.Load(); m != nil {
		g := m.cur.Load()
		s.MovingGeneration, s.MovingDigests = g.n, maps.Clone(g.digests)
	}
	return s
}

// CountsHandler serves GET (and HEAD) with the CountsSnapshot as JSON. It is
// read-only and does not count its own requests; serve it on a listener of
// its own so the front's routes stay exactly Docker Hub's.
func (u *Upstream) CountsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(u.CountsSnapshot())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
