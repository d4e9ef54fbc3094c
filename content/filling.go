package content

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/tasks"
)

// Filling answers which blobs are being filled at this moment: by the fill engine of this
// process (Fills), or by any process holding a fill lock in Redis. A storage quota's
// eviction keeps them. Either field may be nil.
type Filling struct {
	Fills *fill.Fills
	Redis redis.UniversalClient
}

var _ tasks.Filling = Filling{}

// Filling returns those of digests that a fill is fetching.
func (f Filling) Filling(ctx context.Context, digests []string) (map[string]bool, error) {
	out := map[string]bool{}
	if f.Fills != nil {
		for _, d := range digests {
			if f.Fills.Running(d) != nil {
				out[d] = true
			}
		}
	}
	if f.Redis == nil || len(digests) == 0 {
		return out, nil
	}
	cmds := make([]*redis.IntCmd, len(digests))
	_, err := f.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range digests {
			cmds[i] = p.Exists(ctx, fillLockKey(d))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, d := range digests {
		if cmds[i].Val() > 0 {
			out[d] = true
		}
	}
	return out, nil
}
