package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// UpstreamStatus is what one content process last saw of an upstream, published so that the
// API (maybe another process) can show it: either the pull budget of one set of remote
// settings (Kind "budget", keyed by UpstreamBudgetKey) or the circuit breaker of one upstream
// host (Kind "breaker", keyed by UpstreamHostKey). It never holds credentials.
type UpstreamStatus struct {
	Key       string `gorm:"column:status_key;primaryKey;size:128"`
	Process   string `gorm:"primaryKey;size:255"`
	Kind      string `gorm:"size:16;not null"`
	UpdatedAt time.Time

	// The pull budget (Kind "budget"): the upstream's figures, when they were reported, when a
	// 429 said to come back, and the fraction under which the budget counts as low.
	Limit       int
	Remaining   int
	WindowSecs  int64
	ObservedAt  *time.Time
	SpentUntil  *time.Time
	LowFraction float64

	// The breaker (Kind "breaker").
	State               string `gorm:"size:16"`
	ConsecutiveFailures int
	OpenedAt            *time.Time
	RetryAt             *time.Time
}

// The kinds of UpstreamStatus rows.
const (
	UpstreamKindBudget  = "budget"
	UpstreamKindBreaker = "breaker"
)

// UpstreamBudgetKey names the pull budget of r's upstream settings (URL, credentials, TLS,
// proxy, headers): the same for every remote with those settings (a pull-through remote and
// the remotes of the images pulled through it), another for other credentials. It is a MAC
// under the database encryption key (a plain hash without one), so it reveals nothing of the
// credentials.
func UpstreamBudgetKey(r *Remote) string {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	raw, _ := json.Marshal([]any{strings.TrimSuffix(r.URL, "/"), str(r.Username), str(r.Password), r.TLSValidation,
		str(r.CACert), str(r.ClientCert), str(r.ClientKey), str(r.ProxyURL), str(r.ProxyUsername),
		str(r.ProxyPassword), r.Headers})
	var sum []byte
	if k := EncryptionKey(); k != nil {
		sum = k.MAC(raw)
	} else {
		s := sha256.Sum256(raw)
		sum = s[:]
	}
	return "budget:" + hex.EncodeToString(sum)
}

// UpstreamHostKey names the circuit breaker of the host (and port) of the upstream URL.
func UpstreamHostKey(host string) string { return "host:" + strings.ToLower(host) }

// UpstreamHost is the host (and port) of a remote's URL, "" when it does not parse.
func UpstreamHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// SaveUpstreamStatus writes s (Key, Process and Kind set), replacing the process's last one.
func SaveUpstreamStatus(db *gorm.DB, s *UpstreamStatus) error {
	s.UpdatedAt = Now()
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "status_key"}, {Name: "process"}},
		UpdateAll: true,
	}).Create(s).Error
}

// UpstreamStatuses returns the rows of the given keys from every process, most recently
// updated first.
func UpstreamStatuses(db *gorm.DB, keys ...string) ([]UpstreamStatus, error) {
	var out []UpstreamStatus
	err := db.Where("status_key IN ?", keys).Order("updated_at DESC").Find(&out).Error
	return out, err
}

// UpstreamView is the upstream_status/ answer of a pull-through remote: the upstream host,
// its pull budget and circuit breaker as the content processes last published them, and
// each process's own view.
type UpstreamView struct {
	Upstream  string        `json:"upstream"`
	Budget    *BudgetView   `json:"budget"`
	Breaker   BreakerView   `json:"breaker"`
	Processes []ProcessView `json:"processes"`
}

// BudgetView is a pull budget as the API shows it. Low and Spent are judged when it is
// read; Expired says the window has passed since the report, which then limits nothing.
type BudgetView struct {
	Limit         int     `json:"limit"`
	Remaining     int     `json:"remaining"`
	WindowSeconds int64   `json:"window_seconds"`
	Low           bool    `json:"low"`
	Spent         bool    `json:"spent"`
	Expired       bool    `json:"expired"`
	LowFraction   float64 `json:"low_fraction"`
	ObservedAt    any     `json:"observed_at"`
	SpentUntil    any     `json:"spent_until"`
}

// BreakerView is a circuit breaker as the API shows it.
type BreakerView struct {
	State               string `json:"state"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	OpenedAt            any    `json:"opened_at"`
	RetryAt             any    `json:"retry_at"`
}

// ProcessView is what one content process published last.
type ProcessView struct {
	Process   string       `json:"process"`
	Online    bool         `json:"online"`
	UpdatedAt string       `json:"updated_at"`
	Budget    *BudgetView  `json:"budget"`
	Breaker   *BreakerView `json:"breaker"`
}

// UpstreamStatusOf builds the upstream_status/ answer of remote at now. The budget shown is
// the one reported last (by any process: it is the upstream's word); the breaker is that of
// the online content process (a heartbeat younger than contentTTL) that changed it last,
// closed when none did.
func UpstreamStatusOf(db *gorm.DB, remote *Remote, now time.Time, contentTTL time.Duration) (*UpstreamView, error) {
	host := UpstreamHost(remote.URL)
	rows, err := UpstreamStatuses(db, UpstreamBudgetKey(remote), UpstreamHostKey(host))
	if err != nil {
		return nil, err
	}
	apps, err := Online(db, AppContent, contentTTL)
	if err != nil {
		return nil, err
	}
	online := map[string]bool{}
	for _, a := range apps {
		online[a.Name] = true
	}
	v := &UpstreamView{Upstream: host, Breaker: BreakerView{State: "closed"}, Processes: []ProcessView{}}
	byProcess := map[string]int{}
	var latest *time.Time
	breakerSeen := false
	for i := range rows {
		r := &rows[i]
		idx, ok := byProcess[r.Process]
		if !ok {
			idx = len(v.Processes)
			byProcess[r.Process] = idx
			v.Processes = append(v.Processes, ProcessView{Process: r.Process, Online: online[r.Process],
				UpdatedAt: FormatTime(r.UpdatedAt)})
		}
		p := &v.Processes[idx]
		switch r.Kind {
		case UpstreamKindBudget:
			b := budgetView(r, now)
			p.Budget = b
			if r.ObservedAt != nil && (latest == nil || r.ObservedAt.After(*latest)) {
				latest, v.Budget = r.ObservedAt, b
			}
		case UpstreamKindBreaker:
			b := BreakerView{State: r.State, ConsecutiveFailures: r.ConsecutiveFailures,
				OpenedAt: FormatTimePtr(r.OpenedAt), RetryAt: FormatTimePtr(r.RetryAt)}
			p.Breaker = &b
			if !breakerSeen && online[r.Process] { // rows come most recently updated first
				v.Breaker, breakerSeen = b, true
			}
		}
	}
	return v, nil
}

// budgetView judges a published budget at now.
func budgetView(r *UpstreamStatus, now time.Time) *BudgetView {
	b := &BudgetView{Limit: r.Limit, Remaining: r.Remaining, WindowSeconds: r.WindowSecs, LowFraction: r.LowFraction,
		ObservedAt: FormatTimePtr(r.ObservedAt), SpentUntil: FormatTimePtr(r.SpentUntil)}
	window := time.Duration(r.WindowSecs) * time.Second
	if window <= 0 {
		window = time.Minute
	}
	refused := r.SpentUntil != nil && now.Before(*r.SpentUntil)
	b.Expired = r.ObservedAt == nil || (!now.Before(r.ObservedAt.Add(window)) && !refused)
	if !b.Expired {
		b.Spent = refused || r.Remaining <= 0
		b.Low = b.Spent || (r.Limit > 0 && float64(r.Remaining) <= r.LowFraction*float64(r.Limit))
	}
	return b
}
