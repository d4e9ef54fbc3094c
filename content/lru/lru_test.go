package lru

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestEntriesBound(t *testing.T) {
	c := New(Options[string, int]{MaxEntries: 3})
	for i := range 5 {
		c.Add(fmt.Sprint(i), i)
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	for _, k := range []string{"0", "1"} {
		if c.Has(k) {
			t.Errorf("%s kept, want evicted", k)
		}
	}
	// Using "2" makes "3" the least recently used.
	c.Get("2")
	c.Add("5", 5)
	if c.Has("3") || !c.Has("2") {
		t.Errorf("LRU order not followed: has 3 = %v, has 2 = %v", c.Has("3"), c.Has("2"))
	}
}

func TestBytesBound(t *testing.T) {
	c := New(Options[string, []byte]{MaxBytes: 100, MaxItemBytes: 60,
		Size: func(_ string, v []byte) int64 { return int64(len(v)) }})
	if c.Add("big", make([]byte, 61)) {
		t.Fatal("an entry over MaxItemBytes was kept")
	}
	for i := range 10 {
		c.Add(fmt.Sprint(i), make([]byte, 40))
		if c.Bytes() > 100 {
			t.Fatalf("Bytes = %d after %d adds, bound 100", c.Bytes(), i+1)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2 entries of 40 bytes", c.Len())
	}
	// Replacing an entry counts only its new size.
	c.Add("9", make([]byte, 10))
	if c.Bytes() != 50 {
		t.Fatalf("Bytes = %d after replacing, want 50", c.Bytes())
	}
}

func TestTTL(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(Options[string, int]{MaxEntries: 10, TTL: time.Second, Now: func() time.Time { return now }})
	c.Add("a", 1)
	c.AddTTL("b", 2, 0)
	now = now.Add(999 * time.Millisecond)
	if !c.Has("a") {
		t.Fatal("a expired early")
	}
	now = now.Add(time.Millisecond)
	if c.Has("a") {
		t.Fatal("a did not expire")
	}
	if !c.Has("b") {
		t.Fatal("b (no TTL) expired")
	}
	var keys []string
	c.Range(func(k string, _ int) bool { keys = append(keys, k); return true })
	if fmt.Sprint(keys) != "[b]" {
		t.Fatalf("Range = %v, want [b]", keys)
	}
}

func TestConcurrent(t *testing.T) {
	c := New(Options[int, int]{MaxEntries: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				c.Add(g*1000+i, i)
				c.Get(i)
			}
		}()
	}
	wg.Wait()
	if c.Len() != 50 {
		t.Fatalf("Len = %d, want 50", c.Len())
	}
}

func TestOnEvict(t *testing.T) {
	var evicted []string
	c := New(Options[string, int]{MaxEntries: 2, OnEvict: func(k string, _ int) { evicted = append(evicted, k) }})
	c.Add("a", 1)
	c.Add("b", 2)
	c.Add("a", 3) // a replaced, not evicted
	c.Add("c", 4)
	if fmt.Sprint(evicted) != "[b]" {
		t.Fatalf("evicted %v, want [b]", evicted)
	}
}
