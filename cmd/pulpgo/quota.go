package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/content"
	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/inuse"
	"github.com/pulpgo/pulpgo/content/lastpull"
	"github.com/pulpgo/pulpgo/content/storage"
	"github.com/pulpgo/pulpgo/tasks"
)

// quotaSettings are the storage quota's settings: above High × Bytes stored, a worker's
// evict task removes the least recently pulled pull-through images until Low × Bytes.
type quotaSettings struct {
	// Bytes is the quota (0: none).
	Bytes int64
	// High and Low are the watermarks, fractions of Bytes.
	High, Low float64
	// Interval is how often a worker measures the storage.
	Interval time.Duration
	// LastPullFlush is how often content processes write the pull times they noted.
	LastPullFlush time.Duration
}

// quota is the tasks package's view of the settings.
func (q quotaSettings) quota() tasks.Quota {
	return tasks.Quota{Bytes: q.Bytes, High: q.High, Low: q.Low}
}

// quotaFlags declares the quota's flags on fs; errors in PULPGO_* values go to envErrs.
func quotaFlags(fs *flag.FlagSet, q *quotaSettings, envErrs *[]error,
	dur func(*time.Duration, string, string, time.Duration, string)) {
	q.High, q.Low = 0.90, 0.80
	if v, ok := os.LookupEnv("PULPGO_STORAGE_QUOTA"); ok {
		n, err := parseBytes(v)
		if err != nil {
			*envErrs = append(*envErrs, fmt.Errorf("PULPGO_STORAGE_QUOTA: %w", err))
		}
		q.Bytes = n
	}
	fs.Func("storage-quota", "size the blob storage may hold, like 500GB or 10GiB (bytes without a suffix; 0 = no quota, the default): above --storage-quota-high of it, workers evict the least recently pulled images of pull-through repositories until --storage-quota-low (env PULPGO_STORAGE_QUOTA)",
		func(v string) (err error) { q.Bytes, err = parseBytes(v); return err })
	fraction := func(p *float64, name, env, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				*envErrs = append(*envErrs, fmt.Errorf("%s=%q is not a number", env, v))
			}
			*p = f
		}
		fs.Float64Var(p, name, *p, usage+" (env "+env+")")
	}
	fraction(&q.High, "storage-quota-high", "PULPGO_STORAGE_QUOTA_HIGH", "fraction of --storage-quota above which eviction starts")
	fraction(&q.Low, "storage-quota-low", "PULPGO_STORAGE_QUOTA_LOW", "fraction of --storage-quota eviction brings the storage down to")
	dur(&q.Interval, "storage-quota-interval", "PULPGO_STORAGE_QUOTA_INTERVAL", tasks.DefaultEvictInterval, "how often a worker measures the storage against --storage-quota")
	dur(&q.LastPullFlush, "last-pull-flush", "PULPGO_LAST_PULL_FLUSH", lastpull.DefaultFlushInterval, "how often a content process writes the pull times it noted in memory to the database (and at shutdown)")
}

// check refuses settings that cannot work.
func (q quotaSettings) check() error {
	if q.Bytes < 0 {
		return fmt.Errorf("--storage-quota must not be negative, not %d", q.Bytes)
	}
	if !(q.Low > 0 && q.Low < q.High && q.High <= 1) {
		return fmt.Errorf("--storage-quota-low and --storage-quota-high must be fractions with 0 < low < high <= 1, not %g and %g", q.Low, q.High)
	}
	if q.Interval <= 0 || q.LastPullFlush <= 0 {
		return fmt.Errorf("--storage-quota-interval and --last-pull-flush must be positive, not %s and %s", q.Interval, q.LastPullFlush)
	}
	return nil
}

// byteUnits are the suffixes parseBytes accepts, longest first within each family.
var byteUnits = []struct {
	suffix string
	size   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"P", 1 << 50},
	{"B", 1},
}

// parseBytes reads a size: a number of bytes, or a number (decimals allowed) with a suffix:
// KB, MB, GB, TB, PB in powers of 1000; KiB, MiB, GiB, TiB, PiB (or K, M, G, T, P) in powers
// of 1024. Suffixes are case-insensitive.
func parseBytes(s string) (int64, error) {
	v := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range byteUnits {
		if len(v) > len(u.suffix) && strings.EqualFold(v[len(v)-len(u.suffix):], u.suffix) {
			v, mult = strings.TrimSpace(v[:len(v)-len(u.suffix)]), u.size
			break
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size like 500MB, 10GiB or 1073741824", s)
	}
	n := f * mult
	if n >= math.MaxInt64 {
		return 0, errors.New("size " + strconv.Quote(s) + " is too large")
	}
	return int64(n), nil
}

// newEviction returns the worker's eviction under cfg's quota: blobs read at this moment
// (uses) and blobs being filled (by the content app of this process, reg, or through the
// fill locks in rdb) are kept.
func newEviction(cfg *config, store storage.Driver, uses *inuse.Tracker, reg *content.App, rdb redis.UniversalClient, log *slog.Logger) *tasks.Eviction {
	var fills *fill.Fills
	if reg != nil {
		fills = reg.Fills()
	}
	return tasks.NewEviction(cfg.Quota.quota(), store, uses, content.Filling{Fills: fills, Redis: rdb}, log)
}
