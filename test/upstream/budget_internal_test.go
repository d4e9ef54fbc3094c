package upstream

import (
	"net/http/httptest"
	"testing"
	"time"
)

// TestBudgetRollingWindow walks a budget of 3 per 10 s through a clock of
// its own: each spent unit comes back exactly one window after it was spent.
func TestBudgetRollingWindow(t *testing.T) {
	t.Parallel()
	b := newBudget(PullBudget{Limit: 3, Window: 10 * time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	steps := []struct {
		at    float64
		left  int
		ok    bool
		retry time.Duration
	}{
		{0, 2, true, 0},
		{1, 1, true, 0},
		{2, 0, true, 0},
		{3, 0, false, 7 * time.Second}, // the unit of t=0 comes back at t=10
		{9.5, 0, false, 500 * time.Millisecond},
		{10, 0, true, 0}, // t=0's unit is back and spent again
		{10.5, 0, false, 500 * time.Millisecond},
		{11, 0, true, 0},
		{25, 2, true, 0}, // a whole window later everything is back
	}
	for _, s := range steps {
		left, ok, retry := b.spend(at(s.at))
		if left != s.left || ok != s.ok || retry != s.retry {
			t.Errorf("spend at %v s = (%d, %v, %v), want (%d, %v, %v)", s.at, left, ok, retry, s.left, s.ok, s.retry)
		}
	}
	if got := b.remaining(at(35)); got != 3 {
		t.Errorf("remaining a window after the last spend = %d, want 3", got)
	}
	if newBudget(PullBudget{}) != nil {
		t.Error("a zero PullBudget made a budget, want none (no limit)")
	}
}

// TestBudgetHeaders checks Docker Hub's header format.
func TestBudgetHeaders(t *testing.T) {
	t.Parallel()
	b := newBudget(PullBudget{Limit: 100, Window: 6 * time.Hour})
	w := httptest.NewRecorder()
	b.setHeaders(w.Header(), 76)
	if got, want := w.Header().Get("RateLimit-Limit"), "100;w=21600"; got != want {
		t.Errorf("RateLimit-Limit = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("RateLimit-Remaining"), "76;w=21600"; got != want {
		t.Errorf("RateLimit-Remaining = %q, want %q", got, want)
	}
}
