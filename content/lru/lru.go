// Package lru holds Cache, a map bounded by its number of entries and by the bytes they hold,
// whose entries may expire. The content app keeps what it learns (parsed manifests, upstream
// answers, access grants) in such caches, so that no client and no upstream can make it hold
// more memory than its bounds.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Options bound a Cache. A zero bound is no bound; at least one of MaxEntries and MaxBytes
// should be set.
type Options[K comparable, V any] struct {
	// MaxEntries is the most entries kept; the least recently used go first.
	MaxEntries int
	// MaxBytes is the most bytes kept, as Size counts them.
	MaxBytes int64
	// MaxItemBytes refuses entries larger than this (they are not kept at all).
	MaxItemBytes int64
	// TTL is how long an entry added with Add is kept; zero keeps it until evicted.
	TTL time.Duration
	// Size counts the bytes of an entry; nil counts each entry as 1 byte plus its key's length
	// when K is a string.
	Size func(K, V) int64
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// OnEvict, if set, is called (without the cache's lock) with each entry evicted to keep
	// the bounds, so that it can release what the value holds.
	OnEvict func(K, V)
}

// Cache is a bounded, concurrency-safe map with least-recently-used eviction and optional
// expiry. The zero value is not usable; call New.
type Cache[K comparable, V any] struct {
	opt Options[K, V]

	mu    sync.Mutex
	ll    *list.List // front is most recently used
	items map[K]*list.Element
	bytes int64
}

type entry[K comparable, V any] struct {
	key     K
	val     V
	size    int64
	expires time.Time // zero: never
}

// New returns an empty Cache bounded by opt.
func New[K comparable, V any](opt Options[K, V]) *Cache[K, V] {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Cache[K, V]{opt: opt, ll: list.New(), items: map[K]*list.Element{}}
}

func (c *Cache[K, V]) size(k K, v V) int64 {
	if c.opt.Size != nil {
		return c.opt.Size(k, v)
	}
	if s, ok := any(k).(string); ok {
		return int64(len(s)) + 1
	}
	return 1
}

// Get returns the value of k if it is there and has not expired, and marks it used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !e.expires.IsZero() && !c.opt.Now().Before(e.expires) {
		c.remove(el)
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// Has reports whether k is there and has not expired.
func (c *Cache[K, V]) Has(k K) bool {
	_, ok := c.Get(k)
	return ok
}

// Add sets k to v with the cache's TTL. It reports false when v is larger than MaxItemBytes
// or MaxBytes and was not kept.
func (c *Cache[K, V]) Add(k K, v V) bool { return c.AddTTL(k, v, c.opt.TTL) }

// AddTTL sets k to v, expiring after ttl (zero: never), evicting the least recently used
// entries until the bounds hold again.
func (c *Cache[K, V]) AddTTL(k K, v V, ttl time.Duration) bool {
	size := c.size(k, v)
	var evicted []*entry[K, V]
	defer func() {
		for _, e := range evicted {
			c.opt.OnEvict(e.key, e.val)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	if (c.opt.MaxItemBytes > 0 && size > c.opt.MaxItemBytes) || (c.opt.MaxBytes > 0 && size > c.opt.MaxBytes) {
		return false
	}
	e := &entry[K, V]{key: k, val: v, size: size}
	if ttl > 0 {
		e.expires = c.opt.Now().Add(ttl)
	}
	c.items[k] = c.ll.PushFront(e)
	c.bytes += size
	for (c.opt.MaxEntries > 0 && c.ll.Len() > c.opt.MaxEntries) || (c.opt.MaxBytes > 0 && c.bytes > c.opt.MaxBytes) {
		e := c.remove(c.ll.Back())
		if c.opt.OnEvict != nil {
			evicted = append(evicted, e)
		}
	}
	return true
}

// Remove deletes k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
}

// Len returns the number of entries (expired ones not yet dropped included).
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// Bytes returns the bytes the entries hold, as Size counts them.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Range calls fn for each unexpired entry, most recently used first, until fn returns false.
// fn must not call the cache.
func (c *Cache[K, V]) Range(fn func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opt.Now()
	for el := c.ll.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry[K, V])
		if !e.expires.IsZero() && !now.Before(e.expires) {
			continue
		}
		if !fn(e.key, e.val) {
			return
		}
	}
}

func (c *Cache[K, V]) remove(el *list.Element) *entry[K, V] {
	e := c.ll.Remove(el).(*entry[K, V])
	delete(c.items, e.key)
	c.bytes -= e.size
	return e
}
