package main

import (
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/models"
)

// Bounds of the process's own Redis client: a Redis that is gone or hangs costs a request
// at most a few seconds, never a hang.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 2 * time.Second
	redisPoolTimeout = 3 * time.Second
)

// newRedisClient is the process's own client of the Redis of opt (fill locks, reads in use,
// probes, status). Unlike Asynq's clients it honours its callers' deadlines
// (ContextTimeoutEnabled): a hold's 500 ms budget, a probe's 2 s, a fill lock's attempt;
// dial, read, write and the wait for a pooled connection are bounded too. Its connection
// failures are UnavailableErrors (models.RedisGuard). A Sentinel or cluster URL gets Asynq's
// client with the same guard.
func newRedisClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	var c redis.UniversalClient
	if o, ok := opt.(asynq.RedisClientOpt); ok {
		c = redis.NewClient(&redis.Options{Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password,
			DB: o.DB, TLSConfig: o.TLSConfig, PoolSize: o.PoolSize, ContextTimeoutEnabled: true,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout, PoolTimeout: redisPoolTimeout})
	} else {
		c = opt.MakeRedisClient().(redis.UniversalClient)
	}
	c.AddHook(models.RedisGuard{})
	return c
}
