package upstreamstatus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestPublisher checks that budget and breaker changes are logged once per change of level
// (a budget recovers in the log only above twice the threshold), and that the last state of
// each is written, as this process, when the Publisher flushes.
func TestPublisher(t *testing.T) {
	db := testenv.OpenDB(t, testenv.Embedded())
	var logs bytes.Buffer
	p := New(db, slog.New(slog.NewTextHandler(&logs, nil)), 0.10)
	now := time.Now()
	b := upstream.Budget{Limit: 100, Remaining: 50, Window: time.Hour, ObservedAt: now}
	p.Budget("budget:k", "hub.example:443", b)
	b.Remaining = 9
	p.Budget("budget:k", "hub.example:443", b)
	b.Remaining = 8
	p.Budget("budget:k", "hub.example:443", b)
	b.Remaining, b.SpentUntil = 0, now.Add(time.Minute)
	p.Budget("budget:k", "hub.example:443", b)
	// Back above the threshold but not above twice it: still low for the log (no flapping);
	// low again, then well above it: recovered, once.
	b.Remaining, b.SpentUntil = 15, time.Time{}
	p.Budget("budget:k", "hub.example:443", b)
	b.Remaining = 9
	p.Budget("budget:k", "hub.example:443", b)
	b.Remaining = 60
	p.Budget("budget:k", "hub.example:443", b)
	p.Breaker("hub.example:443", upstream.BreakerStatus{State: upstream.BreakerOpen, ConsecutiveFailures: 5,
		OpenedAt: now, RetryAt: now.Add(30 * time.Second)})
	p.Close()

	out := logs.String()
	// low (50 → 9), spent, low again (spent → 15: GETs for what the cache lacks resume; 9:
	// no change), recovered (60), breaker open.
	for want, times := range map[string]int{"pull budget low": 2, "pull budget spent": 1, "pull budget recovered": 1,
		"circuit breaker open": 1} {
		if n := strings.Count(out, want); n != times {
			t.Errorf("log %q %d times, want %d:\n%s", want, n, times, out)
		}
	}
	rows, err := models.UpstreamStatuses(db, "budget:k", models.UpstreamHostKey("hub.example:443"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want the budget and the breaker", len(rows))
	}
	for _, r := range rows {
		switch r.Kind {
		case models.UpstreamKindBudget:
			if r.Remaining != 60 || r.Limit != 100 || r.WindowSecs != 3600 || r.Process != models.ProcessName() {
				t.Errorf("budget row %+v, want the last report (60 of 100 left)", r)
			}
		case models.UpstreamKindBreaker:
			if r.State != upstream.BreakerOpen || r.ConsecutiveFailures != 5 || r.RetryAt == nil {
				t.Errorf("breaker row %+v", r)
			}
		}
	}
}
