package tasks

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestDispatchWakesIdleWorker: an idle worker waits for the dispatcher's wake-up, not for its
// next look at the queue. With an idle poll of an hour, every task here completes only
// because it was published, one after another on an idle worker.
func TestDispatchWakesIdleWorker(t *testing.T) {
	t.Parallel()
	testenv.RunEngines(t, func(t *testing.T, e testenv.Engine) {
		rec := newRecorder()
		r := newRigIdle(t, e, map[string]Job{recordJob: rec.job}, time.Hour)
		t.Cleanup(rec.openAll)
		for i := range 3 {
			// Let the worker go idle: its dequeue is waiting in the long poll.
			time.Sleep(100 * time.Millisecond)
			gate := fmt.Sprint("g", i)
			rec.open(gate)
			task := r.dispatch(recordJob, nil, nil, gateArgs{Gate: gate})
			r.waitState(task.ID, models.TaskCompleted)
			t.Logf("task %d completed", i)
		}
	})
}
