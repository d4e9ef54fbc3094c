// Package upstreamstatus publishes what the content app sees of its upstreams (the pull
// budget of each set of remote settings, the circuit breaker of each host): it logs each
// change of state and writes the latest state to the database (models.UpstreamStatus), at
// most once a second per budget or host, where the API's upstream_status/ reads it.
package upstreamstatus

import (
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/models"
)

// Publisher logs and stores upstream states. Its methods are safe for concurrent use.
type Publisher struct {
	db      *gorm.DB
	log     *slog.Logger
	process string
	low     float64
	every   time.Duration

	mu      sync.Mutex
	pending map[string]*models.UpstreamStatus // by key, not yet written
	levels  map[string]string                 // the last logged budget level by key
	stop    chan struct{}
	done    chan struct{}
}

// New starts a Publisher writing to db as this process; low is the fraction of the limit
// under which a budget is logged (and shown) as low.
func New(db *gorm.DB, log *slog.Logger, low float64) *Publisher {
	p := &Publisher{db: db, log: log, process: models.ProcessName(), low: low, every: time.Second,
		pending: map[string]*models.UpstreamStatus{}, levels: map[string]string{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Budget records the budget b of the remote settings key (models.UpstreamBudgetKey) of
// upstream host, logging when it becomes low, spent, or recovers.
func (p *Publisher) Budget(key, host string, b upstream.Budget) {
	now := time.Now()
	level := "ok"
	switch {
	case b.Spent(now):
		level = "spent"
	case b.Low(now, p.low):
		level = "low"
	}
	row := &models.UpstreamStatus{Key: key, Process: p.process, Kind: models.UpstreamKindBudget,
		Limit: b.Limit, Remaining: b.Remaining, WindowSecs: int64(b.Window / time.Second),
		ObservedAt: timePtr(b.ObservedAt), SpentUntil: timePtr(b.SpentUntil), LowFraction: p.low}
	p.mu.Lock()
	before, seen := p.levels[key]
	if level == "ok" && before != "ok" && seen && float64(b.Remaining) <= 2*p.low*float64(b.Limit) {
		// Hysteresis for the log: a budget hovering at the threshold (each GET that leaves
		// the rolling window is spent again at once) is not "recovered" on every report.
		level = before
		if before == "spent" {
			level = "low"
		}
	}
	p.levels[key] = level
	p.pending[key] = row
	p.mu.Unlock()
	if level == before || (!seen && level == "ok") {
		return
	}
	attrs := []any{"upstream", host, "limit", b.Limit, "remaining", b.Remaining, "window", b.Window}
	switch level {
	case "spent":
		p.log.Warn("upstream pull budget spent: serving cached tags, no manifest GETs until it recovers",
			append(attrs, "until", b.SpentUntil)...)
	case "low":
		p.log.Warn("upstream pull budget low: manifest GETs only for what the cache lacks", attrs...)
	default:
		p.log.Info("upstream pull budget recovered", attrs...)
	}
}

// Breaker records a change of host's circuit breaker and logs it.
func (p *Publisher) Breaker(host string, st upstream.BreakerStatus) {
	switch st.State {
	case upstream.BreakerOpen:
		p.log.Warn("upstream circuit breaker open: answering from the cache", "upstream", host,
			"consecutive_failures", st.ConsecutiveFailures, "retry_at", st.RetryAt)
	case upstream.BreakerHalfOpen:
		p.log.Info("upstream circuit breaker half open: one probe", "upstream", host)
	default:
		p.log.Info("upstream circuit breaker closed", "upstream", host)
	}
	key := models.UpstreamHostKey(host)
	p.mu.Lock()
	p.pending[key] = &models.UpstreamStatus{Key: key, Process: p.process, Kind: models.UpstreamKindBreaker,
		State: st.State, ConsecutiveFailures: st.ConsecutiveFailures,
		OpenedAt: timePtr(st.OpenedAt), RetryAt: timePtr(st.RetryAt)}
	p.mu.Unlock()
}

// Close writes what is pending and stops the Publisher.
func (p *Publisher) Close() {
	close(p.stop)
	<-p.done
}

func (p *Publisher) run() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.flush()
		case <-p.stop:
			p.flush()
			return
		}
	}
}

// flush writes the pending rows: at most one per key per tick.
func (p *Publisher) flush() {
	p.mu.Lock()
	rows := p.pending
	p.pending = map[string]*models.UpstreamStatus{}
	p.mu.Unlock()
	for _, row := range rows {
		if err := models.SaveUpstreamStatus(p.db, row); err != nil {
			p.log.Warn("publishing upstream status failed", "kind", row.Kind, "err", err)
		}
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
