package tasks

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// wakeChannel is the Redis channel a Dispatcher publishes on after it enqueues a task: idle
// workers, in this process or another, take the task at once instead of at their next look.
const wakeChannel = "pulpgo:tasks:wake"

// DefaultIdlePoll is how long an idle worker waits for a wake-up before it looks at the queue
// again (a task enqueued by something that does not publish, or a lost wake-up, waits at
// most that long).
const DefaultIdlePoll = 250 * time.Millisecond

// longPoll is a go-redis hook that turns Asynq's dequeue poll (a Lua script every few
// milliseconds) into a long poll: when the queue is empty it waits for a wake-up, or for the
// idle poll time, and looks once more. An idle worker then runs the script a few times a
// second instead of two hundred, and a new task still starts within a millisecond.
type longPoll struct {
	wake <-chan struct{}
	idle time.Duration
	done <-chan struct{}
}

func (lp *longPoll) DialHook(next redis.DialHook) redis.DialHook { return next }

func (lp *longPoll) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (lp *longPoll) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !errors.Is(err, redis.Nil) || !isDequeue(cmd) {
			return err
		}
		timer := time.NewTimer(lp.idle)
		defer timer.Stop()
		select {
		case <-lp.wake:
		case <-timer.C:
		case <-lp.done:
			return err
		case <-ctx.Done():
			return err
		}
		cmd.SetErr(nil)
		return next(ctx, cmd)
	}
}

// isDequeue reports whether cmd runs Asynq's dequeue script: EVAL or EVALSHA over a queue's
// pending, paused, active and lease keys.
func isDequeue(cmd redis.Cmder) bool {
	name := cmd.Name()
	if name != "evalsha" && name != "eval" {
		return false
	}
	args := cmd.Args()
	if len(args) < 7 {
		return false
	}
	n, ok := args[2].(int)
	if !ok || n != 4 {
		return false
	}
	pending, _ := args[3].(string)
	lease, _ := args[6].(string)
	return strings.HasPrefix(pending, "asynq:") && strings.HasSuffix(pending, ":pending") && strings.HasSuffix(lease, ":lease")
}

// wakeUps subscribes to wakeChannel on client and turns its messages into wake-ups on wake
// (a channel of capacity 1: wake-ups that arrive together make one), until ctx ends.
func wakeUps(ctx context.Context, client redis.UniversalClient, wake chan<- struct{}) {
	sub := client.Subscribe(ctx, wakeChannel)
	go func() {
		defer sub.Close()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
}
