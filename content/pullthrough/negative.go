package pullthrough

import (
	"time"

	"github.com/pulpgo/pulpgo/content/lru"
)

// negativeCache remembers for a short while the references the upstream said do not exist,
// so that repeated pulls of a missing name cost no upstream request. Keys name everything
// that changes the upstream's answer (see flightKey): a remote without credentials cannot make
// a credentialed remote of the same URL answer 404.
type negativeCache struct {
	ttl time.Duration
	c   *lru.Cache[string, struct{}]
}

// Negative answers are small; the bounds keep them under about 4 MiB.
const (
	maxNegative      = 10000
	maxNegativeBytes = 4 << 20
)

func newNegativeCache(ttl time.Duration) *negativeCache {
	return &negativeCache{ttl: ttl, c: lru.New(lru.Options[string, struct{}]{MaxEntries: maxNegative,
		MaxBytes: maxNegativeBytes, TTL: ttl})}
}

func (n *negativeCache) has(key string) bool { return n.ttl > 0 && n.c.Has(key) }

func (n *negativeCache) add(key string) {
	if n.ttl > 0 {
		n.c.Add(key, struct{}{})
	}
}
