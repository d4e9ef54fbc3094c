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
