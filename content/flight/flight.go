// Package flight runs one call per key at a time: callers that ask for a key while its call
// runs share its result. The call runs on its own goroutine, so a caller whose context ends
// stops waiting without ending the call for the others, and a call that panics fails its
// callers with a *PanicError instead of leaving them waiting.
package flight

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// Group holds the calls in flight by key. The zero value is ready to use.
type Group[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done chan struct{} // closed when val and err are set
	val  T
	err  error
}

// Do returns the result of fn for key: of the call in flight for key if there is one, else of
// a new call of fn. fn runs detached from ctx (give it a context of its own that outlives any
// one caller, with its own bound); ctx only bounds the wait, and its end returns ctx's cause.
// shared reports whether the result came from a call another caller started.
func (g *Group[T]) Do(ctx context.Context, key string, fn func() (T, error)) (v T, err error, shared bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call[T]{}
	}
	c, shared := g.calls[key]
	if !shared {
		c = &call[T]{done: make(chan struct{})}
		g.calls[key] = c
		go g.run(key, c, fn)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err, shared
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx), shared
	}
}

// run calls fn, publishes its result (or its panic) and forgets the call.
func (g *Group[T]) run(key string, c *call[T], fn func() (T, error)) {
	defer func() {
		if r := recover(); r != nil {
			c.err = &PanicError{Key: key, Value: r, Stack: debug.Stack()}
		}
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
}

// PanicError is the error of a call that panicked.
type PanicError struct {
	Key   string
	Value any
	Stack []byte
}

// Error names the key and the panic's value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("flight %q panicked: %v", e.Key, e.Value)
}
