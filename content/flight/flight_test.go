package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSharedCall(t *testing.T) {
	var g Group[int]
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err, _ := g.Do(context.Background(), "k", func() (int, error) {
				calls.Add(1)
				<-release
				return 42, nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}()
	}
	time.Sleep(50 * time.Millisecond) // let every caller join the one call
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	for _, v := range results {
		if v != 42 {
			t.Fatalf("results %v, want all 42", results)
		}
	}
	// The call is forgotten once done: the next Do calls again.
	if v, _, shared := g.Do(context.Background(), "k", func() (int, error) { return 7, nil }); v != 7 || shared {
		t.Fatalf("after the call: %d shared=%v, want a new call", v, shared)
	}
}

// TestWaiterLeaves checks that a caller whose context ends stops waiting at once, and that
// the call goes on for the others.
func TestWaiterLeaves(t *testing.T) {
	var g Group[string]
	release := make(chan struct{})
	fn := func() (string, error) { <-release; return "done", nil }
	ctx, cancel := context.WithCancelCause(context.Background())
	left := make(chan error, 1)
	go func() { _, err, _ := g.Do(ctx, "k", fn); left <- err }()
	stayed := make(chan string, 1)
	time.Sleep(20 * time.Millisecond)
	go func() { v, _, _ := g.Do(context.Background(), "k", fn); stayed <- v }()
	gone := errors.New("client gone")
	cancel(gone)
	select {
	case err := <-left:
		if !errors.Is(err, gone) {
			t.Fatalf("leaving caller: %v, want its context's cause", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a caller whose context ended is still waiting")
	}
	close(release)
	if v := <-stayed; v != "done" {
		t.Fatalf("remaining caller got %q", v)
	}
}

// TestPanicFailsWaiters checks that a panicking call fails every caller with a PanicError.
func TestPanicFailsWaiters(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err, _ := g.Do(context.Background(), "k", func() (int, error) { <-release; panic("boom") })
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	for range 3 {
		select {
		case err := <-errs:
			var pe *PanicError
			if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
				t.Fatalf("err %v, want a PanicError with boom and a stack", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a caller of a panicking call hangs")
		}
	}
}
