package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
)

// Embedded is an in-process Redis (miniredis) for the single-process `serve` role. miniredis
// only expires keys when told that time passed, so a ticker keeps its clock moving (Asynq's
// leases and heartbeats rely on TTLs).
type Embedded struct {
	srv    *miniredis.Miniredis
	cancel context.CancelFunc
}

// StartEmbedded starts an in-process Redis on a loopback port.
func StartEmbedded() (*Embedded, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				srv.FastForward(now.Sub(last))
				srv.SetTime(now)
				last = now
			}
		}
	}()
	return &Embedded{srv: srv, cancel: cancel}, nil
}

// URL is the redis:// URL of the embedded server.
func (e *Embedded) URL() string { return "redis://" + e.srv.Addr() + "/0" }

// Close stops the embedded server.
func (e *Embedded) Close() {
	e.cancel()
	e.srv.Close()
}

// RedisOpt parses a redis:// URL into Asynq's connection options.
func RedisOpt(url string) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	return opt, nil
}
