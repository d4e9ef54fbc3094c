package models

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// RedisGuard is the boundary between pulpgo and Redis: a go-redis hook (client.AddHook) that
// wraps the connection-level failures of every command and pipeline as
// UnavailableError("redis"), which the API and the registry answer 503. Hooks run around
// go-redis's own retries, so only a failure that outlived them is wrapped; redis.Nil and the
// server's answers to a command (WRONGTYPE, a script's error) are left as they are.
type RedisGuard struct{}

var _ redis.Hook = RedisGuard{}

// DialHook leaves dialling alone: go-redis decides on retries from the dial error itself.
func (RedisGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook wraps the failure of one command.
func (RedisGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if redisConnFailed(err) {
			err = Unavailable("redis", err)
			cmd.SetErr(err)
		}
		return err
	}
}

// ProcessPipelineHook wraps the failure of a pipeline (or MULTI/EXEC) and of its commands.
func (RedisGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if redisConnFailed(cmd.Err()) {
				cmd.SetErr(Unavailable("redis", cmd.Err()))
			}
		}
		if redisConnFailed(err) {
			err = Unavailable("redis", err)
		}
		return err
	}
}

// redisConnFailed reports whether err, returned by go-redis, means Redis could not be
// reached, did not answer, or cannot serve yet: everything IsUnavailable knows, a deadline,
// a connection that ended (EOF: at this boundary only Redis's socket), a reset or refused
// connection, no free connection in the pool in time, or a server that is loading its data,
// lost its master or is full of clients. A client's own cancellation is not one.
func redisConnFailed(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) || errors.As(err, new(*UnavailableError)) {
		return false
	}
	if IsUnavailable(err) || netFailure(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		return strings.HasPrefix(msg, "LOADING ") || strings.HasPrefix(msg, "MASTERDOWN ") ||
			strings.HasPrefix(msg, "BUSY ") || msg == "ERR max number of clients reached"
	}
	return false
}
