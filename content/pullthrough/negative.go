package pullthrough

import (
	"sync"
	"time"
)

// negativeCache remembers for a short while the references the upstream said do not exist,
// so that repeated pulls of a missing name cost no upstream request.
type negativeCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]time.Time
}

func newNegativeCache(ttl time.Duration) *negativeCache {
	return &negativeCache{ttl: ttl, m: map[string]time.Time{}}
}

func (n *negativeCache) has(key string) bool {
	if n.ttl <= 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	until, ok := n.m[key]
	if ok && time.Now().After(until) {
		delete(n.m, key)
		return false
	}
	return ok
}

func (n *negativeCache) add(key string) {
	if n.ttl <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) > 10000 {
		now := time.Now()
		for k, until := range n.m {
			if now.After(until) {
				delete(n.m, k)
			}
		}
	}
	n.m[key] = time.Now().Add(n.ttl)
}
