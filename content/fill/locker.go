package fill

import "context"

// Locker decides which process fetches a digest when several content processes share one
// storage. Lock blocks until this process may fill digest, or ctx ends, and returns the function
// that releases the lock. A fill checks storage again after Lock, so a process that waited for
// another one's fill finds the blob stored and does not fetch it. A PostgreSQL advisory lock or
// a Redis lock can implement it; within one process Fills already runs one fill per digest.
type Locker interface {
	Lock(ctx context.Context, digest string) (unlock func(), err error)
}

// NoLocker is the default Locker: it never waits, so processes do not coordinate.
type NoLocker struct{}

var _ Locker = NoLocker{}

// Lock returns at once with a no-op unlock.
func (NoLocker) Lock(context.Context, string) (func(), error) { return func() {}, nil }
